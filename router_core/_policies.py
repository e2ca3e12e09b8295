"""Routing policies: an abstract ``Policy`` with one scoring method and a concrete ``decide()``.

Policies are registered by name in ``POLICIES``; the router runs them in order (rules, then
the classifier or the cascade) and ends with ``DefaultPolicy``. Everything a policy needs
from the config is computed in its constructor, so ``score()`` touches only tuples and floats.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from operator import itemgetter
from typing import ClassVar, NamedTuple

from router_core._catalog import Catalog
from router_core._config_schema import RouterConfig
from router_core._decision import CascadeStep, Decision, QualityPredictor, RouteRequest
from router_core._modes import MODES, ModeParams, card_threshold
from router_core._rules import CompiledRule, compile_rule
from router_core.errors import NoRouteAvailable

__all__ = [
    "POLICIES",
    "CascadePolicy",
    "Choice",
    "ClassifierPolicy",
    "DefaultPolicy",
    "Plan",
    "Policy",
    "RequestContext",
    "RulesPolicy",
]


class Plan:
    """What every policy shares for one config: the config, catalog, quality model and the
    per-model constants of the decision path."""

    __slots__ = (
        "_meta",
        "all_eligible",
        "all_indices",
        "by_cost",
        "catalog",
        "config",
        "cost_of_output",
        "cost_per_input_token",
        "fit_window",
        "output_tokens",
        "predicted",
        "predictor",
        "take_quality",
        "version",
    )

    def __init__(
        self, config: RouterConfig, catalog: Catalog, predictor: QualityPredictor | None
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.predictor = predictor
        self.version = config.version
        out = config.routing.output_tokens_estimate
        self.output_tokens = out
        self.cost_per_input_token = tuple(p / 1e6 for p in catalog.input_price)
        self.cost_of_output = tuple(out * p / 1e6 for p in catalog.output_price)
        # requests up to this many input tokens fit every model's context window
        self.fit_window = min(catalog.context_window) - out
        self.all_eligible = (True,) * len(catalog)
        self.all_indices = tuple(range(len(catalog)))
        predicted = tuple(i for i, j in enumerate(catalog.quality_index) if j >= 0)
        self.predicted = self.all_indices if predicted == self.all_indices else predicted
        self.by_cost = _cost_order(catalog, out)
        # every model predicted: map the prediction vector to catalog order in one C call
        qidx = catalog.quality_index
        self.take_quality = itemgetter(*qidx) if len(qidx) > 1 and min(qidx) >= 0 else None
        self._meta: dict[str, tuple[str, ...]] = {"": ()}

    def meta(self, task_type: str) -> tuple[str, ...]:
        """The quality model's metadata tokens for a task type (cached)."""
        tokens = self._meta.get(task_type)
        if tokens is None:
            tokens = (f"task_type={task_type}",)
            if len(self._meta) < 1024:  # bounded: task types come from callers
                self._meta[task_type] = tokens
        return tokens


def _cost_order(catalog: Catalog, output_tokens: int) -> tuple[int, ...] | None:
    """Catalog indices by ascending cost of a typical request (250 input tokens), or None if
    two models sharing a quality prediction could swap cost order with the prompt's length.

    The fast path sorts this order stably by predicted quality, so models predicted equal
    (the same ``quality_ref``) come out cheapest first, as the general path does.
    """
    n = len(catalog)
    pin, pout = catalog.input_price, catalog.output_price
    for i in range(n):
        for j in range(i + 1, n):
            same = catalog.quality_index[i] == catalog.quality_index[j]
            if same and (pin[i] - pin[j]) * (pout[i] - pout[j]) < 0:
                return None
    return tuple(sorted(range(n), key=lambda i: (250 * pin[i] + output_tokens * pout[i], i)))


class Choice(NamedTuple):
    """A policy's pick: a catalog index and why."""

    model_index: int
    reason: str
    category: str = ""
    cascade: tuple[CascadeStep, ...] = ()


class RequestContext:
    """One request's derived values: token estimate, per-model cost, eligibility, predictions.

    ``eligible[i]`` says whether catalog model ``i`` passes the request's filters (context
    window, capabilities, max cost); ``eligible_indices`` lists those models in catalog order.
    """

    __slots__ = (
        "_q",
        "costs",
        "eligible",
        "eligible_indices",
        "input_tokens",
        "plan",
        "req",
        "start_ns",
        "use_model",
    )

    def __init__(
        self, plan: Plan, req: RouteRequest, input_tokens: int, start_ns: int, use_model: bool
    ) -> None:
        self.plan = plan
        self.req = req
        self.input_tokens = input_tokens
        self.start_ns = start_ns
        self.use_model = use_model and plan.predictor is not None
        self._q: Sequence[float | None] | None = None
        t = input_tokens
        self.costs = costs = [
            t * a + b for a, b in zip(plan.cost_per_input_token, plan.cost_of_output)
        ]
        caps = req.capabilities
        max_cost = req.max_cost_usd
        if not caps and max_cost <= 0 and t <= plan.fit_window:
            self.eligible: Sequence[bool] = plan.all_eligible  # the common case: no filter bites
            self.eligible_indices: Sequence[int] = plan.all_indices
            return
        need = t + plan.output_tokens
        wanted = frozenset(caps)
        cat = plan.catalog
        self.eligible = eligible = [
            window >= need and wanted <= have and (max_cost <= 0 or cost <= max_cost)
            for window, have, cost in zip(cat.context_window, cat.capabilities, costs, strict=True)
        ]
        self.eligible_indices = [i for i, ok in enumerate(eligible) if ok]

    def quality(self) -> Sequence[float | None]:
        """Predicted quality per catalog index (None where the model has no prediction)."""
        q = self._q
        if q is None:
            predictor = self.plan.predictor
            if predictor is None or not self.use_model:
                q = [None] * len(self.costs)
            else:
                plan = self.plan
                task_type = self.req.task_type
                meta = plan.meta(task_type) if task_type else ()
                raw = predictor.predict(self.req.text, meta).tolist()
                if plan.take_quality is not None:
                    q = plan.take_quality(raw)
                else:
                    q = [raw[j] if j >= 0 else None for j in plan.catalog.quality_index]
            self._q = q
        return q

    def ranked(self, exclude: Collection[int] = ()) -> list[int]:
        """Eligible indices by descending predicted quality, then cost; unpredicted ones last
        in catalog order."""
        q = self.quality()
        costs = self.costs
        scored = []
        unscored = []
        for i in self.eligible_indices:
            if i in exclude:
                continue
            qi = q[i]
            if qi is None:
                unscored.append(i)
            else:
                scored.append((-qi, costs[i], i))
        scored.sort()
        return [k[2] for k in scored] + unscored

    def decision(self, strategy: str, choice: Choice) -> Decision:
        """Assemble the decision for ``choice`` (scores, costs, fallbacks, timing)."""
        plan = self.plan
        cat = plan.catalog
        names = cat.names
        q = self._q if self._q is not None else self.quality()
        costs = self.costs
        chosen = choice.model_index
        if (
            self.eligible is plan.all_eligible
            and plan.predicted is plan.all_indices
            and self.use_model
        ):
            # the common case, in C loops: every model eligible and predicted
            scores = dict(zip(names, q))
            cost_map = dict(zip(names, costs))
            if not choice.cascade and plan.by_cost is not None:
                # stable sort of the cost-ordered indices: equal quality keeps cheaper first
                order = sorted(plan.by_cost, key=q.__getitem__, reverse=True)  # type: ignore[arg-type]
                fallbacks = tuple([names[i] for i in order if i != chosen])
            else:
                fallbacks = self._fallbacks(choice)
        else:
            indices = self.eligible_indices
            scores = {names[i]: q[i] for i in indices if q[i] is not None}
            cost_map = {names[i]: costs[i] for i in indices}
            fallbacks = self._fallbacks(choice)
        req = self.req
        return Decision(
            model=names[choice.model_index],
            provider=cat.providers[choice.model_index],
            strategy=strategy,
            reason=choice.reason,
            scores=scores,  # type: ignore[arg-type]
            costs=cost_map,
            fallbacks=fallbacks,
            cascade=choice.cascade,
            category=req.task_type or choice.category or "general",
            config_version=plan.version,
            decision_us=(time.perf_counter_ns() - self.start_ns) / 1000.0,
            input_tokens=self.input_tokens,
            request_id=req.request_id,
        )

    def _fallbacks(self, choice: Choice) -> tuple[str, ...]:
        if choice.cascade:
            index = self.plan.catalog.index
            exclude: Collection[int] = {index[step.model] for step in choice.cascade}
        else:
            exclude = (choice.model_index,)
        names = self.plan.catalog.names
        return tuple([names[i] for i in self.ranked(exclude)])


class Policy(ABC):
    """A routing policy. Subclasses implement ``score``; ``decide`` is shared."""

    name: ClassVar[str]

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @classmethod
    def unavailable(cls, plan: Plan) -> str:
        """Why this policy cannot run with this plan ("" if it can)."""
        return ""

    @abstractmethod
    def score(self, ctx: RequestContext) -> Choice | None:
        """Pick a catalog model for this request, or None to leave it to the next policy."""

    def decide(self, ctx: RequestContext) -> Decision | None:
        """The decision for the model ``score`` picks, or None."""
        choice = self.score(ctx)
        return None if choice is None else ctx.decision(self.name, choice)


class RulesPolicy(Policy):
    """The first rule (in config order) that matches and whose model passes the filters."""

    name = "rules"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        index = plan.catalog.index
        self.rules: tuple[CompiledRule, ...] = tuple(
            compile_rule(rule, index[rule.model]) for rule in plan.config.routing.rules
        )

    def score(self, ctx: RequestContext) -> Choice | None:
        eligible = ctx.eligible
        for rule in self.rules:
            if eligible[rule.model_index] and rule.matches(ctx.req, ctx.input_tokens):
                return Choice(rule.model_index, f"rule {rule.name}", rule.category)
        return None


class ClassifierPolicy(Policy):
    """Predicted quality per candidate, turned into a pick by the configured mode."""

    name = "classifier"

    @classmethod
    def unavailable(cls, plan: Plan) -> str:
        return "" if plan.predictor is not None else "no router model is loaded"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        config = plan.config
        clf = config.routing.classifier
        cat = plan.catalog
        qidx = cat.quality_index
        for i, name in enumerate(clf.candidates):
            if qidx[cat.index[name]] < 0:
                raise config.error(("routing", "classifier", "candidates", i), _unpredicted(name))
        names = clf.candidates or cat.names
        self.candidates = tuple(cat.index[n] for n in names if qidx[cat.index[n]] >= 0)
        if not self.candidates:
            raise config.error(
                ("routing", "classifier"), "no catalog model has a quality prediction"
            )
        for key in ("strong", "weak"):
            pair_name = getattr(clf, key)
            if pair_name is not None and qidx[cat.index[pair_name]] < 0:
                raise config.error(("routing", "classifier", key), _unpredicted(pair_name))
        card = getattr(plan.predictor, "card", None)
        card = card if isinstance(card, dict) else {}
        threshold = None
        if clf.strong_share is not None and clf.strong and clf.weak:
            pair = (cat.quality_name(clf.strong) or "", cat.quality_name(clf.weak) or "")
            try:
                threshold = card_threshold(card, clf.strong_share, pair)
            except ValueError as exc:
                raise config.error(("routing", "classifier", "strong_share"), str(exc)) from None
        kind = str(card.get("routing_score", "diff"))
        self.params = ModeParams.from_config(clf, cat, kind, threshold)
        self.mode = MODES[clf.mode]

    def score(self, ctx: RequestContext) -> Choice | None:
        eligible = ctx.eligible
        if eligible is self.plan.all_eligible:
            candidates: Sequence[int] = self.candidates
        else:
            candidates = [i for i in self.candidates if eligible[i]]
        if not candidates:
            return None
        picked = self.mode.pick(ctx, candidates, self.params)
        return None if picked is None else Choice(picked[0], picked[1])


def _unpredicted(name: str) -> str:
    return f"model {name!r} is not an output of the router model; set its quality_ref"


class CascadePolicy(Policy):
    """The cheapest cascade model first; the service escalates along ``Decision.cascade``."""

    name = "cascade"

    @classmethod
    def unavailable(cls, plan: Plan) -> str:
        if not plan.config.routing.cascade.models:
            return "routing.cascade.models is empty"
        if plan.predictor is None:
            return "no router model is loaded to score the answers"
        if not getattr(plan.predictor, "has_scorer", True):
            return "the router model has no response scorer (scorer.onnx)"
        return ""

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        index = plan.catalog.index
        self.steps = tuple(
            (index[s.model], s.model, s.min_confidence) for s in plan.config.routing.cascade.models
        )

    def score(self, ctx: RequestContext) -> Choice | None:
        eligible = ctx.eligible
        steps = [s for s in self.steps if eligible[s[0]]]
        if not steps:
            return None
        cascade = tuple(
            CascadeStep(name, conf if k < len(steps) - 1 else 0.0)
            for k, (_, name, conf) in enumerate(steps)
        )
        reason = "cascade " + " -> ".join(step.model for step in cascade)
        return Choice(steps[0][0], reason, "", cascade)


class DefaultPolicy(Policy):
    """The configured default model, or the best remaining candidate if it is filtered out."""

    name = "default"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        default = plan.config.routing.default or plan.catalog.names[0]
        self.index = plan.catalog.index[default]

    def score(self, ctx: RequestContext) -> Choice:
        if ctx.eligible[self.index]:
            return Choice(self.index, "default model")
        ranked = ctx.ranked()
        if not ranked:
            raise NoRouteAvailable(
                f"no configured model fits this request ({ctx.input_tokens} estimated input "
                f"tokens, capabilities {list(ctx.req.capabilities) or 'none'}, "
                f"max cost {ctx.req.max_cost_usd or 'unlimited'})"
            )
        return Choice(ranked[0], "default model filtered out; best remaining candidate")


POLICIES: dict[str, type[Policy]] = {
    RulesPolicy.name: RulesPolicy,
    ClassifierPolicy.name: ClassifierPolicy,
    CascadePolicy.name: CascadePolicy,
}
