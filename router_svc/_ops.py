"""Operations around each decision: the decision log, feedback, monitor, A/B, budgets, metrics.

``Operations`` builds these parts from the config and hands the servicer its collaborators:
``hooks`` (monitor, then A/B, then budgets adjust the core's decision), ``recorder`` (fills in
the A/B arm and the counterfactual cost, counts spend, queues the record), ``feedback``
(stores it and feeds the monitor) and ``wrap_completer`` (feeds upstream attempts to the
monitor and the provider metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from router_core._costs import estimate_cost
from router_svc._ab import REFERENCE, ROUTED, SHADOW, ABAssigner
from router_svc._accounting import BudgetGuard, SpendSync, most_capable
from router_svc._events import CompletionResult, Delta
from router_svc._metrics import Metrics
from router_svc._monitor import Monitor
from router_svc._recent import KnownRequest
from router_svc._recorder import Recorder
from router_svc._shadow import Shadower
from router_svc._storage import DecisionRecord, FeedbackRecord, open_store

if TYPE_CHECKING:
    from router_core._decision import Decision, RouteRequest
    from router_svc._state import RouterState

__all__ = ["Operations"]


class Operations:
    """Everything that happens around a decision, built once per process from the config.

    Args:
        state: the router holder (the current config and catalog are read per call).
        metrics: the metrics to update (None: none).
        recorder: the decision log (None: decisions are not stored, feedback is refused).
    """

    def __init__(
        self,
        state: RouterState,
        *,
        metrics: Metrics | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        config = state.config
        self._state = state
        self._config = config
        self.metrics = metrics
        self.log = recorder
        if recorder is not None:
            recorder.prepare = self.prepare
        self.monitor = Monitor(config.monitor, metrics=metrics)
        self.ab = ABAssigner(config.ab, metrics=metrics)
        self.budgets = BudgetGuard(
            config.budgets, recorder.spend_totals if recorder is not None else None, metrics=metrics
        )
        if recorder is not None:  # after each flush: committed spend, then the shared counters
            recorder.after_flush = SpendSync(self.budgets, self._shadow_budget)
        self.shadow = Shadower(
            self.ab, scorer=self._scorer, record=self.record, feedback=self.feedback_cached,
            timeout_s=lambda: self._state.current.config.timeouts.total_timeout_s, metrics=metrics,
        )  # fmt: skip

    def _shadow_budget(self) -> Any:
        ab = self.ab
        return ab.shadow_budget if ab.active and ab.settings.shadow.enabled else None

    def _scorer(self) -> Any:
        router = self._state.current.router
        return router if router.quality_model is not None else None

    @classmethod
    def from_config(cls, state: RouterState, metrics: Metrics | None = None, *,
                    storage: bool = True) -> Operations:  # fmt: skip
        """Open the configured store lazily (the service starts even if it is down)."""
        s = state.config.storage
        recorder = None
        if storage and s.url:
            url = s.url
            recorder = Recorder(
                lambda: open_store(url), flush_interval_s=s.flush_interval_s,
                max_queue=s.max_queue, metrics=metrics, remember=s.remember_requests,
            )  # fmt: skip
        return cls(state, metrics=metrics, recorder=recorder)

    def start(self) -> None:
        if self.log is not None:
            self.log.start()

    def stop(self) -> None:
        """Stop background work; shadow calls still running are abandoned (daemon loop)."""
        if self.log is not None:
            self.log.stop()

    # -- decision hooks ---------------------------------------------------------------------

    def _provider_of(self, name: str) -> str:
        return self._state.current.catalog[name].provider

    @property
    def hooks(self) -> Sequence[Callable[[RouteRequest, Decision], Decision]]:
        """Monitor, A/B, budgets: in this order (a spent budget overrides the others)."""
        return (self._monitor_hook, self._ab_hook, self._budget_hook)

    def _follow_reload(self) -> None:
        """Pick up reloaded ``monitor:``, ``ab:`` and ``budgets:`` sections (windows, arms'
        hash and spend carry over; a new ``storage:`` section needs a restart)."""
        config = self._state.current.config
        if config is self._config:
            return
        self._config = config
        self.monitor.settings = config.monitor
        if config.ab != self.ab.settings:
            budget = self.ab.shadow_budget
            self.ab = ABAssigner(config.ab, metrics=self.metrics)
            budget.max_usd = config.ab.shadow.max_cost_usd_per_day
            self.ab.shadow_budget = budget  # today's shadow spend carries over
            self.shadow.ab = self.ab
        self.budgets.settings = config.budgets

    def _monitor_hook(self, request: RouteRequest, decision: Decision) -> Decision:
        self._follow_reload()  # the first hook: one identity check per request
        return self.monitor.apply(decision, self._provider_of)

    def _ab_hook(self, request: RouteRequest, decision: Decision) -> Decision:
        return self.ab.assign(decision, request.request_id, self._provider_of)[0]

    def _budget_hook(self, request: RouteRequest, decision: Decision) -> Decision:
        return self.budgets.apply(decision, request.tenant, self._provider_of)

    # -- recorder (the servicer's DecisionRecorder) ------------------------------------------

    @property
    def recorder(self) -> Operations | None:
        return self if self.log is not None else None

    def record(self, rec: DecisionRecord) -> bool:
        """Count the record's spend and queue it (``prepare`` completes it off the request path)."""
        assert self.log is not None
        if rec.ab_arm != SHADOW:  # shadow calls are the operator's experiment, not a tenant's
            self.budgets.add(rec.tenant, rec.cost_usd)
        return self.log.record(rec)

    def prepare(self, rec: DecisionRecord) -> DecisionRecord:
        """On the flusher thread, once per record: A/B arm, counterfactual cost, cost metrics."""
        config = self._state.current.config
        arm = self._arm(rec)
        # the record is the recorder's alone now: completed in place (dataclasses.replace
        # cost more than the write itself)
        rec.ab_arm = arm
        rec.reference_cost_usd = self._reference_cost(config, rec)
        if self.metrics is not None and rec.outcome != "failed" and arm != SHADOW:
            # completions: the servicer counts the actual cost; Route only: the estimate
            estimate = rec.cost_usd if rec.outcome == "routed" else 0.0
            self.metrics.observe_cost(rec.model, rec.category, estimate, rec.reference_cost_usd)
        return rec

    def _arm(self, rec: DecisionRecord) -> str:
        ref = self.ab.settings.reference_model
        if rec.ab_arm == SHADOW or not self.ab.active:
            return rec.ab_arm  # a shadow call's own record
        if rec.model != ref and ref not in rec.costs:
            return ""  # the reference was not a candidate
        arm = self.ab.arm(rec.request_id, rec.category)
        if arm == REFERENCE and rec.model != ref:
            return ""  # pinned or over budget: the reference did not answer
        return ROUTED if arm == SHADOW else arm  # shadowed: the routed model answered

    def _reference_cost(self, config: Any, rec: DecisionRecord) -> float:
        name = most_capable(config)
        if rec.outcome != "completed" and name in rec.costs:
            return float(rec.costs[name])
        spec = next((m for m in config.models if m.name == name), None)
        if spec is None:
            return 0.0
        out = (
            rec.output_tokens
            if rec.outcome == "completed"
            else config.routing.output_tokens_estimate
        )
        return estimate_cost(
            rec.input_tokens, out, spec.input_price_per_mtok, spec.output_price_per_mtok
        )

    # -- feedback (the servicer's FeedbackSink) ----------------------------------------------

    @property
    def feedback_sink(self) -> Operations | None:
        return self if self.log is not None else None

    def feedback_cached(self, fb: FeedbackRecord) -> KnownRequest | None:
        """``feedback`` for requests this process remembers, without blocking; else None."""
        assert self.log is not None
        known = self.log.feedback_cached(fb)
        if known is not None:
            self._observe_feedback(fb, known)
        return known

    def feedback(self, fb: FeedbackRecord) -> KnownRequest | None:
        """Store feedback and feed the monitor; None if the request id is unknown (blocks)."""
        assert self.log is not None
        known = self.log.feedback(fb)
        self._observe_feedback(fb, known)
        return known

    def _observe_feedback(self, fb: FeedbackRecord, known: KnownRequest | None) -> None:
        if self.metrics is not None:
            self.metrics.feedback.labels(fb.source, "accepted" if known else "unknown").inc()
        if known is not None:  # a category named by the feedback overrides the decision's
            self.monitor.observe_feedback(known.model, fb.category or known.category, fb.score)

    # -- completions ---------------------------------------------------------------------------

    def wrap_completer(self, completer: Any) -> Any:
        """A completer whose runs report attempts to the monitor and provider metrics."""
        return _ObservedCompleter(completer, self)

    def observe_attempts(self, decision: Any, attempts: Sequence[Any], breakers: Any) -> None:
        m, category = self.metrics, decision.category
        for i, a in enumerate(attempts):
            if a.outcome == "skipped":
                continue
            ok = a.outcome in ("ok", "rejected")
            self.monitor.observe_call(
                a.model, category, ok=ok, latency_ms=a.latency_ms, escalated=a.outcome == "rejected"
            )
            if m is None:
                continue
            model = m.model(a.model)
            m.provider_latency.labels(model).observe(a.latency_ms / 1000)
            if a.outcome == "rejected":
                m.escalations.labels(model).inc()
            elif not ok:
                m.provider_errors.labels(model, a.error or a.outcome).inc()
                if i < len(attempts) - 1:
                    m.fallbacks.labels(model).inc()
            if breakers is not None:
                m.set_breaker(a.model, breakers.get(a.model).state)


class _ObservedCompleter:
    """Passes a completer's events through and reports its attempts afterwards."""

    def __init__(self, inner: Any, ops: Operations) -> None:
        self._inner = inner
        self._ops = ops

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def run(
        self,
        decision: Any,
        messages: Sequence[Any],
        deadline: float | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        capabilities: Sequence[str] = (),
    ) -> AsyncIterator[Any]:
        from router_svc._completion_types import attempts_of

        events = self._inner.run(
            decision, messages, deadline, max_tokens=max_tokens, temperature=temperature,
            capabilities=capabilities,
        )  # fmt: skip
        breakers = getattr(self._inner, "breakers", None)
        parts: list[str] = []
        result: CompletionResult | None = None
        try:
            async for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                elif isinstance(event, CompletionResult):
                    result = event
                    self._ops.observe_attempts(decision, event.attempts, breakers)
                    if self._ops.metrics is not None and event.ttft_ms > 0:
                        self._ops.metrics.provider_ttft.labels(
                            self._ops.metrics.model(event.model)
                        ).observe(event.ttft_ms / 1000)
                yield event
        except Exception as exc:
            self._ops.observe_attempts(decision, attempts_of(exc), breakers)
            raise
        finally:
            await events.aclose()
        shadow = self._ops.shadow
        if result is not None and shadow.wanted(decision, result):
            shadow.start(self._inner, decision, messages, "".join(parts), result,
                         self._ops._provider_of)  # fmt: skip
