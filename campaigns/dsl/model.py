"""The plan's pydantic models: quiet hours, messages, transitions, send / wait / stop nodes, the plan."""
from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from campaigns.dsl.fields import (
    HHMM,
    Duration,
    NodeId,
    NodeRef,
    _check_send_days,
    _check_timezone,
    _fail,
    _text,
)
from campaigns.dsl.vocabulary import (
    DEFAULT_STOP_REASON,
    MAX_NODES,
    MAX_TRANSITIONS_PER_NODE,
    WEEKDAYS,
    EventName,
    WeekdayName,
    transition_matches_event,
)
from campaigns.durations import parse_duration

# --- models -----------------------------------------------------------------------------------------------------

class _DslModel(BaseModel):
    # strict: no silent coercion (e.g. 5 -> "5"); forbid: a typo must not silently change behaviour.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        # OpenAI strict structured outputs write null for every unused optional key; treat it as absent, so the
        # default applies and the key stays unset (and out of `to_document`). Required keys keep null as an error.
        if isinstance(data, dict) and None in data.values():
            optional = {field.alias or name for name, field in cls.model_fields.items() if not field.is_required()}
            data = {key: value for key, value in data.items() if not (value is None and key in optional)}
        return data


class QuietHours(_DslModel):
    """No send from `start` (inclusive) to `end` (exclusive), local time; wraps midnight when start > end."""

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _start_differs_from_end(self) -> QuietHours:
        if self.start == self.end:
            raise _fail(f"start and end are both {self.start}; quiet hours must not be empty or cover the whole day")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)

    @property
    def wraps_midnight(self) -> bool:
        return self.start > self.end


class EmailMessage(_DslModel):
    subject: _text(1, 200, one_line=True)
    text: _text(1, 20_000)
    html: _text(1, 100_000) | None = None


class SmsMessage(_DslModel):
    text: _text(1, 1_600)


class Transition(_DslModel):
    on: EventName
    to: NodeRef
    within: Duration | None = None
    after: Duration | None = None

    @property
    def within_delta(self) -> timedelta | None:
        return parse_duration(self.within) if self.within else None

    @property
    def after_delta(self) -> timedelta | None:
        return parse_duration(self.after) if self.after else None

    def matches(self, event_type: str) -> bool:
        return transition_matches_event(self.on, event_type)


Transitions = Annotated[list[Transition], Field(max_length=MAX_TRANSITIONS_PER_NODE)]


class SendNode(_DslModel):
    """Base of `EmailSendNode` and `SmsSendNode`; test with `isinstance(node, SendNode)`."""

    id: NodeId
    type: Literal["send"]
    channel: Literal["email", "sms"]
    message: EmailMessage | SmsMessage
    transitions: Transitions


class EmailSendNode(SendNode):
    channel: Literal["email"]
    message: EmailMessage


class SmsSendNode(SendNode):
    channel: Literal["sms"]
    message: SmsMessage


class WaitNode(_DslModel):
    id: NodeId
    type: Literal["wait"]
    duration: Duration
    next: NodeRef
    transitions: Transitions = Field(default_factory=list)

    @property
    def duration_delta(self) -> timedelta:
        return parse_duration(self.duration)


class StopNode(_DslModel):
    id: NodeId
    type: Literal["stop"]
    reason: _text(1, 100, one_line=True) = DEFAULT_STOP_REASON


class PlanMetadata(_DslModel):
    """Facts about how the plan was written, for people and evaluation: the engine never reads them."""

    generator: _text(1, 64, one_line=True) | None = None
    language: _text(1, 16, one_line=True) | None = None
    requested_language: _text(1, 16, one_line=True) | None = Field(default=None, alias="requestedLanguage")
    language_fallback: bool | None = Field(default=None, alias="languageFallback")
    notes: Annotated[list[_text(1, 300, one_line=True)], Field(max_length=10)] | None = None


AnySendNode = Annotated[Union[EmailSendNode, SmsSendNode], Field(discriminator="channel")]  # noqa: UP007
Node = Annotated[Union[AnySendNode, WaitNode, StopNode], Field(discriminator="type")]  # noqa: UP007


class Plan(_DslModel):
    """A whole plan. Build it with `parse_plan`: `Plan.model_validate` alone checks the shape, not the graph."""

    version: Literal["1.0"]
    timezone: Annotated[str, AfterValidator(_check_timezone), Field(description="IANA time zone name")]
    quiet_hours: QuietHours | None = Field(default=None, alias="quietHours")
    send_days: Annotated[
        list[WeekdayName],
        AfterValidator(_check_send_days),
        Field(json_schema_extra={"minItems": 1, "maxItems": 7, "uniqueItems": True}),
    ] | None = Field(default=None, alias="sendDays")
    start_node_id: NodeRef = Field(alias="startNodeId")
    nodes: Annotated[list[Node], Field(min_length=1, max_length=MAX_NODES)]
    metadata: PlanMetadata | None = None

    _by_id: dict[str, SendNode | WaitNode | StopNode] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        self._by_id.update((node.id, node) for node in self.nodes)

    def node(self, node_id: str) -> SendNode | WaitNode | StopNode:
        """The node with that id; KeyError if the plan has none."""
        return self._by_id[node_id]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._by_id

    @property
    def start_node(self) -> SendNode | WaitNode | StopNode:
        return self._by_id[self.start_node_id]

    @property
    def send_weekdays(self) -> frozenset[int]:
        """Allowed `datetime.weekday()` numbers (0 = Monday); every day when sendDays is absent."""
        days = self.send_days or WEEKDAYS
        return frozenset(WEEKDAYS.index(day) for day in days)

    def to_document(self) -> dict[str, Any]:
        """The plan as JSON-ready data with the DSL's key names (keys the input left out stay out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
