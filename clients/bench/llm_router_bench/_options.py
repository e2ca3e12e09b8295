"""The load client's settings: one frozen object, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_TRANSPORT", "EVENT_LOOPS", "RPCS", "TRANSPORTS", "BenchOptions"]

RPCS = ("route", "route-stream", "complete")
EVENT_LOOPS = ("uvloop", "asyncio")
TRANSPORTS = ("h2", "grpc")
# the transport when none is given, per RPC (measured: docs/loadgen.md, "Client cost")
DEFAULT_TRANSPORT = {"route-stream": "h2", "route": "grpc", "complete": "grpc"}


@dataclass(frozen=True)
class BenchOptions:
    """What to send, how hard, for how long.

    Exactly one of ``concurrency`` (closed loop: that many requests in flight) and ``rate``
    (open loop: requests per second, latency measured from the intended send time) drives the
    load; exactly one of ``duration`` and ``requests`` bounds the measured phase.

    Attributes:
        target: ``HOST:PORT`` of the router.
        rpc: one of ``route``, ``route-stream``, ``complete``.
        concurrency: closed loop: requests in flight across all workers.
        rate: open loop: requests per second across all workers.
        duration: seconds of measured load (after the warm-up).
        requests: number of measured requests (after the warm-up).
        warmup: seconds of load before measuring; their results are discarded.
        workers: client processes, each with its own event loop and channels.
        connections: gRPC channels (TCP connections) across all workers; 0 means one per worker.
        streams: RouteStream calls across all workers; 0 means one per connection.
        prompts: a CSV/JSONL file (the ``prompt`` column) or a folder of them; None: synthetic.
        prompt_chars: length of each synthetic prompt.
        max_prompts: at most this many prompts are read from ``prompts``.
        tls: use TLS; ``ca`` is the PEM file of the CA that signed the server certificate.
        server_name: TLS name to verify instead of the host of ``target``.
        token: sent as ``authorization: Bearer TOKEN``.
        max_tokens: Complete only: ``max_tokens`` of each request (0: not set).
        timeout: per-call deadline in seconds.
        progress: print a progress line to stderr once a second.
        event_loop: ``uvloop`` (the default: about a quarter less client CPU per call) or
            ``asyncio``.
        transport: Route and RouteStream: ``h2`` (gRPC messages on HTTP/2 through the ``h2``
            protocol library, ``_h2``) or ``grpc`` (grpc.aio); "" picks the measured cheaper
            one per RPC (``DEFAULT_TRANSPORT``: ``h2`` for RouteStream, ``grpc`` for Route).
            Complete always uses grpc.aio.
    """

    target: str
    rpc: str = "route"
    concurrency: int | None = None
    rate: float | None = None
    duration: float | None = None
    requests: int | None = None
    warmup: float = 1.0
    workers: int = 1
    connections: int = 0
    streams: int = 0
    prompts: Path | None = None
    prompt_chars: int = 1000
    max_prompts: int = 20000
    tls: bool = False
    ca: Path | None = None
    server_name: str = ""
    token: str = ""
    max_tokens: int = 0
    timeout: float = 30.0
    progress: bool = True
    event_loop: str = "uvloop"
    transport: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {self.event_loop!r}"
            )
        if self.rpc not in RPCS:
            raise ValueError(f"rpc must be one of {', '.join(RPCS)}, not {self.rpc!r}")
        if not self.transport:
            object.__setattr__(self, "transport", DEFAULT_TRANSPORT[self.rpc])
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}"
            )
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("give exactly one of concurrency (closed loop) and rate (open loop)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.duration is None and self.requests is None:
            object.__setattr__(self, "duration", 10.0)
        if self.duration is not None and self.requests is not None:
            raise ValueError("give at most one of duration and requests")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.requests is not None and self.requests < 1:
            raise ValueError("requests must be at least 1")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.warmup < 0:
            raise ValueError("warmup must not be negative")
        if ":" not in self.target:
            raise ValueError(f"target must be HOST:PORT, not {self.target!r}")
        if self.concurrency is not None and self.concurrency < self.workers:
            object.__setattr__(self, "workers", self.concurrency)

    @property
    def mode(self) -> str:
        """``closed`` or ``open``."""
        return "closed" if self.concurrency is not None else "open"

    @property
    def total_connections(self) -> int:
        """Channels across all workers (at least one per worker)."""
        return max(self.connections, self.workers)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly view (the token is masked)."""
        d = asdict(self)
        d["prompts"] = str(self.prompts) if self.prompts else None
        d["ca"] = str(self.ca) if self.ca else None
        d["token"] = "***" if self.token else ""
        d["mode"] = self.mode
        return d
