from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_COST: _ClassVar[Priority]
    PRIORITY_BALANCED: _ClassVar[Priority]
    PRIORITY_QUALITY: _ClassVar[Priority]

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    CAPABILITY_TOOLS: _ClassVar[Capability]
    CAPABILITY_VISION: _ClassVar[Capability]
    CAPABILITY_JSON: _ClassVar[Capability]

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_RULES: _ClassVar[Strategy]
    STRATEGY_CLASSIFIER: _ClassVar[Strategy]
    STRATEGY_CASCADE: _ClassVar[Strategy]
    STRATEGY_DEFAULT: _ClassVar[Strategy]

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_OK: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_FAILED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_ESCALATED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SKIPPED: _ClassVar[AttemptOutcome]

class Thumb(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THUMB_UNSPECIFIED: _ClassVar[Thumb]
    THUMB_UP: _ClassVar[Thumb]
    THUMB_DOWN: _ClassVar[Thumb]

class FeedbackSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_SOURCE_UNSPECIFIED: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_USER: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_EVALUATOR: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_HEURISTIC: _ClassVar[FeedbackSource]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role
PRIORITY_UNSPECIFIED: Priority
PRIORITY_COST: Priority
PRIORITY_BALANCED: Priority
PRIORITY_QUALITY: Priority
CAPABILITY_UNSPECIFIED: Capability
CAPABILITY_TOOLS: Capability
CAPABILITY_VISION: Capability
CAPABILITY_JSON: Capability
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_RULES: Strategy
STRATEGY_CLASSIFIER: Strategy
STRATEGY_CASCADE: Strategy
STRATEGY_DEFAULT: Strategy
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_OK: AttemptOutcome
ATTEMPT_OUTCOME_FAILED: AttemptOutcome
ATTEMPT_OUTCOME_ESCALATED: AttemptOutcome
ATTEMPT_OUTCOME_SKIPPED: AttemptOutcome
THUMB_UNSPECIFIED: Thumb
THUMB_UP: Thumb
THUMB_DOWN: Thumb
FEEDBACK_SOURCE_UNSPECIFIED: FeedbackSource
FEEDBACK_SOURCE_USER: FeedbackSource
FEEDBACK_SOURCE_EVALUATOR: FeedbackSource
FEEDBACK_SOURCE_HEURISTIC: FeedbackSource

class Message(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class Overrides(_message.Message):
    __slots__ = ("strategy", "threshold", "quality_target", "model")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    QUALITY_TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    threshold: float
    quality_target: float
    model: str
    def __init__(self, strategy: _Optional[_Union[Strategy, str]] = ..., threshold: _Optional[float] = ..., quality_target: _Optional[float] = ..., model: _Optional[str] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("messages", "request_id", "task_type", "priority", "max_cost_usd", "capabilities", "tenant", "tags", "overrides")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    request_id: str
    task_type: str
    priority: Priority
    max_cost_usd: float
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    tenant: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    overrides: Overrides
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., request_id: _Optional[str] = ..., task_type: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., max_cost_usd: _Optional[float] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., tenant: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., overrides: _Optional[_Union[Overrides, _Mapping]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("model", "provider", "predicted_quality", "estimated_cost_usd")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    model: str
    provider: str
    predicted_quality: float
    estimated_cost_usd: float
    def __init__(self, model: _Optional[str] = ..., provider: _Optional[str] = ..., predicted_quality: _Optional[float] = ..., estimated_cost_usd: _Optional[float] = ...) -> None: ...

class CascadeStep(_message.Message):
    __slots__ = ("model", "min_confidence")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    min_confidence: float
    def __init__(self, model: _Optional[str] = ..., min_confidence: _Optional[float] = ...) -> None: ...

class ItemStatus(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("request_id", "model", "provider", "strategy", "reason", "candidates", "fallbacks", "config_version", "decision_time_us", "category", "monitor_note", "cascade", "status")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_US_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MONITOR_NOTE_FIELD_NUMBER: _ClassVar[int]
    CASCADE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: str
    provider: str
    strategy: Strategy
    reason: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    fallbacks: _containers.RepeatedScalarFieldContainer[str]
    config_version: str
    decision_time_us: int
    category: str
    monitor_note: str
    cascade: _containers.RepeatedCompositeFieldContainer[CascadeStep]
    status: ItemStatus
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., reason: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., fallbacks: _Optional[_Iterable[str]] = ..., config_version: _Optional[str] = ..., decision_time_us: _Optional[int] = ..., category: _Optional[str] = ..., monitor_note: _Optional[str] = ..., cascade: _Optional[_Iterable[_Union[CascadeStep, _Mapping]]] = ..., status: _Optional[_Union[ItemStatus, _Mapping]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("request", "max_tokens", "temperature")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    request: RouteRequest
    max_tokens: int
    temperature: float
    def __init__(self, request: _Optional[_Union[RouteRequest, _Mapping]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("model", "outcome", "error", "confidence", "latency_ms")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    outcome: AttemptOutcome
    error: str
    confidence: float
    latency_ms: float
    def __init__(self, model: _Optional[str] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., error: _Optional[str] = ..., confidence: _Optional[float] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class CompletionSummary(_message.Message):
    __slots__ = ("model", "input_tokens", "output_tokens", "cost_usd", "attempts", "time_to_first_token_ms", "total_time_ms")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    time_to_first_token_ms: float
    total_time_ms: float
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., time_to_first_token_ms: _Optional[float] = ..., total_time_ms: _Optional[float] = ...) -> None: ...

class CompleteEvent(_message.Message):
    __slots__ = ("decision", "delta", "summary")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    decision: RouteDecision
    delta: Delta
    summary: CompletionSummary
    def __init__(self, decision: _Optional[_Union[RouteDecision, _Mapping]] = ..., delta: _Optional[_Union[Delta, _Mapping]] = ..., summary: _Optional[_Union[CompletionSummary, _Mapping]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "score", "thumb", "category", "source", "comment")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THUMB_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    score: float
    thumb: Thumb
    category: str
    source: FeedbackSource
    comment: str
    def __init__(self, request_id: _Optional[str] = ..., score: _Optional[float] = ..., thumb: _Optional[_Union[Thumb, str]] = ..., category: _Optional[str] = ..., source: _Optional[_Union[FeedbackSource, str]] = ..., comment: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    def __init__(self, accepted: _Optional[bool] = ...) -> None: ...
