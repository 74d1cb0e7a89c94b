"""Column-wise preparation of bulk appends: validate and number a whole Arrow table at once.

A bulk append never goes through Python row by row: stream ids are checked with Arrow
kernels, payloads are parsed per event type by Arrow's JSON reader against the schema
the registry derives from the payload dataclass, and versions are numbered with numpy.
"""

from __future__ import annotations

import os
import types
import typing
from typing import Any, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from eventlog.codec import EventRegistry, EventSpec
from eventlog.envelope import MAX_STREAM_ID_LENGTH
from eventlog.errors import InvalidInputError, InvalidStreamIdError, PayloadSchemaError

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# byte value -> its two lowercase hex digits, as one little-endian uint16
_HEX_PAIRS = _HEX[np.arange(256) >> 4].astype(np.uint16) | (
    _HEX[np.arange(256) & 15].astype(np.uint16) << 8
)


def uuid4_array(n: int) -> pa.Array:
    """n random version-4 UUID strings, built without a Python loop."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = {0: 8, 8: 4, 12: 4, 16: 4, 20: 12}[src]
        text[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = pa.py_buffer(np.arange(0, 36 * n + 1, 36, dtype=np.int32).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text.tobytes()))


# bytes a stream id may not hold: path separators and control characters
_FORBIDDEN = np.zeros(256, dtype=bool)
_FORBIDDEN[[ord("/"), ord("\\"), 0x7F, *range(0x20)]] = True


def _plain_ids(ids: pa.Array) -> bool:
    """True when no id holds a forbidden byte and none is empty, long, '.' or '..':
    one pass over the UTF-8 bytes and the offsets, no per-id work."""
    if not isinstance(ids, pa.StringArray) or ids.null_count or len(ids) == 0:
        return False
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[
        ids.offset : ids.offset + len(ids) + 1
    ]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    if _FORBIDDEN[data].any() or lengths.min() < 1 or lengths.max() > MAX_STREAM_ID_LENGTH:
        return False  # (a byte count over the limit may still be few characters: look closer)
    short = lengths <= 2
    return not (
        short.any() and pc.any(pc.is_in(ids.filter(pa.array(short)), pa.array([".", ".."]))).as_py()
    )


def check_stream_ids(ids: pa.ChunkedArray | pa.Array) -> None:
    """Raise InvalidStreamIdError for the first stream id that is not allowed."""
    if isinstance(ids, pa.Array) and _plain_ids(ids):
        return
    bad = pc.or_kleene(
        pc.is_null(ids),
        pc.or_kleene(
            pc.equal(pc.utf8_length(ids), 0),
            pc.or_kleene(
                pc.greater(pc.utf8_length(ids), MAX_STREAM_ID_LENGTH),
                pc.or_kleene(
                    pc.match_substring_regex(ids, r"[/\\\x00-\x1f\x7f]"),
                    pc.is_in(ids, pa.array([".", ".."])),
                ),
            ),
        ),
    )
    if pc.any(bad).as_py():
        from eventlog.envelope import validate_stream_id

        row = pc.index(bad, True).as_py()
        validate_stream_id(ids[row].as_py())
        raise InvalidStreamIdError(f"row {row}: stream id {ids[row].as_py()!r} is not allowed")


def json_string_array(strings: pa.Array) -> str:
    """A JSON array of the given strings, sorted, built by Arrow kernels (no Python loop).

    Only for checked stream ids: they hold no backslash or control character, so a double
    quote is the one character JSON needs escaped.
    """
    ordered = pc.take(strings, pc.sort_indices(strings)).cast(pa.string())
    escaped = pc.replace_substring(ordered, '"', '\\"')
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(escaped)], pa.int32()), escaped), '","'
    )
    return '["' + str(joined[0].as_py()) + '"]' if len(escaped) else "[]"


def _arrow_type(hint: Any) -> tuple[pa.DataType, bool]:
    origin = typing.get_origin(hint)
    nullable = False
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(hint))
        hint = args[0]
    mapping = {int: pa.int64(), str: pa.string(), bool: pa.bool_()}
    if hint not in mapping:
        raise PayloadSchemaError(f"bulk append cannot check field type {hint!r}")
    return mapping[hint], nullable


def check_payloads(registry: EventRegistry, spec: EventSpec, payloads: pa.ChunkedArray) -> None:
    """Parse every payload of one event type against its schema; raise on the first misfit."""
    fields = {name: _arrow_type(h) for name, h in spec.fields.items()}
    schema = pa.schema([pa.field(n, t) for n, (t, _) in fields.items()])
    lines = pc.binary_join_element_wise(payloads, pa.scalar("\n"), "")
    chunks = [_string_bytes(chunk) for chunk in lines.chunks]
    data = chunks[0] if len(chunks) == 1 else pa.py_buffer(b"".join(c.to_pybytes() for c in chunks))
    # one payload per line lets Arrow parse blocks in parallel; a payload that spans
    # lines (pretty-printed JSON) needs the slower serial mode
    multiline = bool(pc.any(pc.match_substring(payloads, "\n")).as_py())
    try:
        parsed = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(block_size=1 << 20),
            parse_options=pj.ParseOptions(
                explicit_schema=schema,
                unexpected_field_behavior="error",
                newlines_in_values=multiline,
            ),
        )
        if parsed.num_rows != len(payloads):
            raise pa.ArrowInvalid("row count differs")
        for name, (_, nullable) in fields.items():
            if not nullable and parsed.column(name).null_count:
                raise pa.ArrowInvalid(f"missing {name}")
        for name, b in spec.bounds.items():
            column = parsed.column(name)
            low, high = pc.min(column).as_py(), pc.max(column).as_py()
            if low is not None and (low < b.lo or high > b.hi):
                raise pa.ArrowInvalid(f"{name} out of bounds")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for i, text in enumerate(payloads.to_pylist()):
            try:
                registry.validate(spec.name, _loads(text))
            except InvalidInputError as exc:
                raise PayloadSchemaError(
                    f"{spec.name} payload #{i + 1} of this type: {exc}"
                ) from None
        raise PayloadSchemaError(f"{spec.name} payloads do not fit the schema") from None


def _string_bytes(chunk: pa.Array) -> pa.Buffer:
    """The concatenated UTF-8 bytes of a string array: a slice of its data buffer, no copy."""
    if len(chunk) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
    lo, hi = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
    return chunk.buffers()[2].slice(int(lo), int(hi - lo))


def _loads(text: str | None) -> Any:
    import json

    try:
        return json.loads(text or "")
    except RecursionError:
        raise PayloadSchemaError("payload nests too deeply") from None
    except ValueError as exc:
        raise PayloadSchemaError(f"payload is not valid JSON: {exc}") from None


def loads_object_or_none(text: str) -> Any:
    """The parsed JSON value, or None when the text is not JSON."""
    from eventlog.codec import loads_object

    try:
        return loads_object(text)
    except ValueError:
        return None


def check_metadata(metadata: pa.ChunkedArray | pa.Array) -> None:
    """Every metadata text must be a JSON object nesting at most MAX_DEPTH levels.

    Rows with few brackets are fine by counting alone; only the others are parsed.
    """
    from eventlog.codec import MAX_DEPTH, check_depth, loads_object

    text = metadata.cast(pa.string())
    if text.null_count:
        raise InvalidInputError("metadata has null values; a JSON object per event expected")
    brackets = pc.add(pc.count_substring(text, "{"), pc.count_substring(text, "["))
    for value in text.filter(pc.greater(brackets, MAX_DEPTH)).to_pylist():
        check_depth(loads_object(value), "metadata")
    # Arrow's JSON reader checks that every line is one JSON object (keeping no field)
    lines = pc.binary_join_element_wise(text, pa.scalar("\n"), "")
    chunks = [_string_bytes(chunk) for chunk in lines.chunks] if lines.num_chunks else []
    data = b"".join(c.to_pybytes() for c in chunks)
    try:
        parsed = pj.read_json(
            pa.BufferReader(data),
            parse_options=pj.ParseOptions(
                explicit_schema=pa.schema([]),
                unexpected_field_behavior="ignore",
                newlines_in_values=bool(pc.any(pc.match_substring(text, "\n")).as_py()),
            ),
        )
        ok = parsed.num_rows == len(text)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        ok = False
    if not ok:
        for i, value in enumerate(text.to_pylist()):
            if not isinstance(loads_object_or_none(value), dict):
                raise InvalidInputError(f"row {i}: metadata {value[:60]!r} is not a JSON object")
        raise InvalidInputError("metadata is not one JSON object per event")


def number_versions(codes: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-row stream versions: ``base[code]`` plus the row's rank within its stream."""
    # a stable sort of 16-bit keys is a radix sort in numpy: linear, not n log n
    keys = codes.astype(np.uint16) if len(base) <= 1 << 16 else codes
    order = np.argsort(keys, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    rank = np.arange(len(codes)) - run_start + 1
    versions = np.empty(len(codes), dtype=np.int64)
    versions[order] = base[sorted_codes] + rank
    return versions
