"""Event-type registry: frozen dataclass payloads, JSON encoding, schema versions, upcasters.

The registry is built explicitly (``EventRegistry().register(...)``), never by import
side effects. The class name of a payload is its stored event type, so renaming a
class is a migration: register an upcaster or keep the old name.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from eventlog.errors import PayloadSchemaError, UnknownEventTypeError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Bounds:
    """The inclusive range an integer payload field must lie in: ``Annotated[int, Bounds(...)]``.

    Every integer field is bounded: by default to what a 64-bit column holds, so that no
    projection stores NULL or overflows on a value the log accepted.
    """

    lo: int
    hi: int


INT64 = Bounds(-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks a string payload field as personal data: ``Annotated[str, PERSONAL]``.

    The log encrypts it at append with the key of the stream's data subject (see
    ``eventlog.shred``); forgetting the subject destroys that key.
    """


@dataclass(frozen=True, slots=True)
class Subject:
    """Marks the payload field that names the data subject: ``Annotated[str, SUBJECT]``.

    The first event of a stream that carries it binds the stream to that subject; the
    stream's personal fields are encrypted with the subject's key from then on.
    """


PERSONAL = Personal()
SUBJECT = Subject()


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the registry knows about one event type."""

    name: str
    cls: type[Any]
    stream_type: str
    schema_version: int
    fields: Mapping[str, Any]
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)
    bounds: Mapping[str, Bounds] = field(default_factory=dict)
    personal: tuple[str, ...] = ()
    subject: str | None = None


def check_bounds(spec: EventSpec, payload: Mapping[str, Any]) -> None:
    """Raise PayloadSchemaError when an integer field lies outside its bounds."""
    for name, b in spec.bounds.items():
        value = payload.get(name)
        if isinstance(value, int) and not b.lo <= value <= b.hi:
            raise PayloadSchemaError(
                f"{spec.name}.{name} is {value}, outside the range {b.lo}..{b.hi} it may take"
            )


def _check_value(type_name: str, field_name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(type_name, field_name, arg, value)
            except PayloadSchemaError as exc:
                errors.append(exc)
        raise errors[0] if errors else PayloadSchemaError(f"{type_name}.{field_name}: bad value")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise PayloadSchemaError(
                f"{type_name}.{field_name} must be a list, got {type(value).__name__}"
            )
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_check_value(type_name, field_name, item, v) for v in value]
    if hint is Any:
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayloadSchemaError(
                f"{type_name}.{field_name} must be an integer, got {type(value).__name__} {value!r}"
            )
        return value
    if hint is str:
        if not isinstance(value, str):
            raise PayloadSchemaError(
                f"{type_name}.{field_name} must be a string, got {type(value).__name__} {value!r}"
            )
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise PayloadSchemaError(
                f"{type_name}.{field_name} must be true or false, got {value!r}"
            )
        return value
    raise PayloadSchemaError(f"{type_name}.{field_name}: unsupported field type {hint!r}")


def _exact_types(spec: EventSpec) -> dict[str, tuple[type, ...]] | None:
    """Per field, the exact value types that fit it; None when a field is not that simple."""
    exact: dict[str, tuple[type, ...]] = {}
    for name, hint in spec.fields.items():
        args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else ()
        plain = [a for a in args if a is not type(None)] if args else [hint]
        if len(plain) != 1 or plain[0] not in (int, str, bool):
            return None
        exact[name] = (plain[0], type(None)) if len(plain) != len(args or plain) else (plain[0],)
    return exact


class EventRegistry:
    """The known event types of a log, by stored type name."""

    def __init__(self, specs: Iterable[EventSpec] = ()) -> None:
        self._specs: dict[str, EventSpec] = {s.name: s for s in specs}
        self._by_class: dict[type[Any], EventSpec] = {s.cls: s for s in self._specs.values()}
        self._exact = {name: _exact_types(spec) for name, spec in self._specs.items()}
        self._exact_items = {
            name: tuple(exact.items()) if exact is not None else None
            for name, exact in self._exact.items()
        }

    def register(
        self,
        cls: type[Any],
        *,
        stream_type: str,
        schema_version: int = 1,
        upcasters: Mapping[int, Upcaster] | None = None,
    ) -> EventRegistry:
        """Add a frozen dataclass payload type; ``upcasters[v]`` lifts a v payload to v+1."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: dict[str, Any] = {}
        bounds: dict[str, Bounds] = {}
        personal: list[str] = []
        subject: str | None = None
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if typing.get_origin(hint) is Annotated:
                base, *extras = typing.get_args(hint)
                found = [e for e in extras if isinstance(e, Bounds)]
                if found:
                    bounds[f.name] = found[0]
                if any(isinstance(e, Personal) for e in extras):
                    if base is not str:
                        raise TypeError(f"{cls.__name__}.{f.name}: only str fields can be Personal")
                    personal.append(f.name)
                if any(isinstance(e, Subject) for e in extras):
                    subject = f.name
                hint = base
            fields[f.name] = hint
            plain = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
            if int in plain and f.name not in bounds:
                bounds[f.name] = INT64
        spec = EventSpec(
            cls.__name__,
            cls,
            stream_type,
            schema_version,
            fields,
            dict(upcasters or {}),
            bounds,
            tuple(personal),
            subject,
        )
        return EventRegistry([*self._specs.values(), spec])

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._specs

    @property
    def personal_fields(self) -> frozenset[str]:
        """The names of every field declared Personal in any registered type."""
        return frozenset(n for s in self._specs.values() for n in s.personal)

    @property
    def event_types(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._specs)

    def spec(self, event_type: str) -> EventSpec:
        """The spec of a type name; UnknownEventTypeError when there is none."""
        try:
            return self._specs[event_type]
        except KeyError:
            known = ", ".join(self.event_types)
            raise UnknownEventTypeError(
                f"unknown event type {event_type!r}; expected one of: {known}"
            ) from None

    def spec_for(self, payload: object) -> EventSpec:
        """The spec of a payload object."""
        try:
            return self._by_class[type(payload)]
        except KeyError:
            raise UnknownEventTypeError(
                f"{type(payload).__name__} is not a registered event type"
            ) from None

    def payload_of(self, payload: object) -> tuple[EventSpec, dict[str, Any]]:
        """The spec of a payload object and its checked JSON dict (``validate`` of its fields)."""
        spec = self.spec_for(payload)
        exact = self._exact_items[spec.name]
        if exact is not None:  # the common case: every value of an exact type, in one pass
            data = {}
            for name, allowed in exact:
                value = getattr(payload, name)
                if type(value) not in allowed:
                    break
                data[name] = value
            else:
                check_bounds(spec, data)
                return spec, data
        return spec, self.validate(spec.name, {n: getattr(payload, n) for n in spec.fields})

    def validate(
        self, event_type: str, data: object, schema_version: int | None = None
    ) -> dict[str, Any]:
        """Upcast and check a JSON payload against its type; returns the canonical dict."""
        spec = self.spec(event_type)
        exact = self._exact[event_type]
        if (
            exact is not None
            and type(data) is dict
            and (schema_version is None or schema_version == spec.schema_version)
            and data.keys() == exact.keys()
            and all(type(data[name]) in allowed for name, allowed in exact.items())
        ):
            # the common case, checked by exact types alone; anything else (a subclass,
            # an old schema version, a misfit) takes the full path below and its errors
            check_bounds(spec, data)
            return {name: data[name] for name in spec.fields}
        if not isinstance(data, Mapping):
            raise PayloadSchemaError(
                f"payload of {event_type} must be a JSON object, got {type(data).__name__}"
            )
        payload = self.upcast(spec, dict(data), schema_version or spec.schema_version)
        missing = [name for name in spec.fields if name not in payload]
        extra = [name for name in payload if name not in spec.fields]
        if missing:
            raise PayloadSchemaError(
                f"{event_type} payload is missing {', '.join(missing)}; "
                f"expected fields: {', '.join(spec.fields)}"
            )
        if extra:
            raise PayloadSchemaError(
                f"{event_type} payload has unknown fields {', '.join(extra)}; "
                f"expected fields: {', '.join(spec.fields)}"
            )
        checked = {
            name: _check_value(event_type, name, hint, payload[name])
            for name, hint in spec.fields.items()
        }
        check_bounds(spec, checked)
        return checked

    def upcast(self, spec: EventSpec, payload: dict[str, Any], version: int) -> dict[str, Any]:
        """Lift a payload from ``version`` to the spec's current schema version."""
        if version > spec.schema_version or version < 1:
            raise PayloadSchemaError(
                f"{spec.name} schema_version {version} is not known; "
                f"expected 1..{spec.schema_version}"
            )
        while version < spec.schema_version:
            step = spec.upcasters.get(version)
            if step is None:
                raise PayloadSchemaError(
                    f"no upcaster for {spec.name} from schema_version {version}"
                )
            payload = step(payload)
            version += 1
        return payload

    def encode(self, payload: object) -> tuple[str, int, str]:
        """(event_type, schema_version, JSON text) of a payload object."""
        spec = self.spec_for(payload)
        data = dataclasses.asdict(payload)  # type: ignore[call-overload]
        return spec.name, spec.schema_version, dumps(data)

    def decode(self, event_type: str, schema_version: int, payload: str | Mapping[str, Any]) -> Any:
        """The payload object of a stored event, upcast to the current schema version."""
        data = loads_object(payload) if isinstance(payload, str) else payload
        spec = self.spec(event_type)
        return spec.cls(**self.validate(event_type, data, schema_version))


MAX_DEPTH = 32  # JSON nesting the log accepts (metadata); DuckDB and readers stay safe


def loads_object(text: str) -> Any:
    """Parse JSON text; input that nests too deeply is bad input, not a crash."""
    try:
        return json.loads(text)
    except RecursionError:
        raise PayloadSchemaError(f"JSON nests deeper than {MAX_DEPTH} levels") from None


def check_depth(value: Any, what: str) -> None:
    """Raise PayloadSchemaError when a JSON value nests deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise PayloadSchemaError(f"{what} nests deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)
# The C encoder behind ``_ENCODER.encode``, made once: ``encode`` builds a new one per call,
# which costs more than encoding a small payload. No circular-reference markers: the log
# encodes JSON values it just checked, never cyclic objects.
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Callable[[object, int], Iterable[str]] | None = (
    _C_MAKE_ENCODER(
        None,
        _ENCODER.default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan (as JSONEncoder's default)
    )
    if _C_MAKE_ENCODER is not None
    else None
)


def dumps(value: object) -> str:
    """Compact, key-sorted JSON: the same value always encodes to the same text."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))
