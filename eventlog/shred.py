"""Crypto-shredding: personal payload fields encrypted per data subject, readable until forgotten.

A field declared ``Personal`` is stored as ``enc:v1:<key id>:<base64(nonce || AES-GCM
ciphertext)>``: a 12-byte random nonce, and associated data binding the ciphertext to
``(stream id, event id, field name)`` so it cannot be moved to another event or field.
The key is the data subject's (see ``eventlog.keystore``): forgetting the subject
destroys it, and every reader then sees ``ERASED`` in its place. Events, positions and
Parquet parts are never rewritten. The write-model state stored beside the stream head
holds its personal fields the same way (associated data ``(stream id, "state", field)``).

A table is decrypted in one of two forms, the stored JSON text (``decrypt_table``, the
log's reads) or typed columns (``decrypt_columns``, the warehouse's pinning); both open
each value through ``_opened``, and they stay here beside it, which takes the module a
little past 400 lines.
"""

from __future__ import annotations

import array
import base64
import binascii
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventlog.codec import EventRegistry
from eventlog.errors import IntegrityError
from eventlog.keystore import KeyStore, SqliteKeyStore

TAG = "enc:v1:"
ERASED = "[erased]"
"""What every read path shows in place of a forgotten subject's personal field."""
STREAM_SUBJECT_PREFIX = "stream:"
"""Subject of a stream whose personal events came without a subject field (a raw append)."""
_CACHE = 10_000  # streams whose key id a log handle keeps


def _string_array(texts: Sequence[str], type_: pa.DataType) -> pa.Array:
    """Python strings as an Arrow array, built from buffers (``pa.array`` of Python values
    makes pyarrow import pandas, which the CLI's quick commands must not pay for)."""
    data = [t.encode() for t in texts]
    offsets = [0, *itertools.accumulate(len(d) for d in data)]
    large = offsets[-1] >= 2**31
    arr = pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        len(data),
        [
            None,
            pa.py_buffer(array.array("q" if large else "i", offsets)),
            pa.py_buffer(b"".join(data)),
        ],
    )
    return arr if arr.type == type_ else arr.cast(type_)


# a sealed value inside a payload's JSON text: "<field>":"enc:v1:<key id>:<base64>"
# (base64 and key ids never need JSON escapes, so the stored text holds them verbatim)
_SEALED_VALUE = re.compile(
    r'"([A-Za-z_][A-Za-z0-9_]*)":"(' + re.escape(TAG) + r'[^:"]+:[A-Za-z0-9+/=]*)"'
)
_TAGGED = "^" + re.escape(TAG) + '[^:"]+:[A-Za-z0-9+/=]*$'  # a whole typed value
_KEY_ID = re.compile(re.escape(TAG) + r'([^:"]+):')
_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _aad(stream_id: str, event_id: str, field: str) -> bytes:
    return f"{stream_id}\x1f{event_id}\x1f{field}".encode()


def _sealed(cipher: AESGCM, key_id: str, nonce: bytes, aad: bytes, value: str) -> str:
    """One field's stored form: ``enc:v1:<key id>:<base64 of nonce + ciphertext>``."""
    blob = nonce + cipher.encrypt(nonce, value.encode(), aad)
    return f"{TAG}{key_id}:{base64.b64encode(blob).decode()}"


def _fresh_nonce() -> bytes:
    return os.urandom(12)


def _opened(ciphers: Mapping[str, AESGCM | None], value: str, aad: bytes) -> str:
    """The plaintext of one tagged value whose key id ``ciphers`` holds (None: the key was
    destroyed, ERASED); IntegrityError when it does not open with that key and ``aad``."""
    key_id, _, b64 = value[len(TAG) :].partition(":")
    cipher = ciphers.get(key_id)
    if cipher is None:
        return ERASED
    try:
        blob = binascii.a2b_base64(b64, strict_mode=True)
        return cipher.decrypt(blob[:12], blob[12:], aad).decode()
    except (InvalidTag, ValueError):  # binascii.Error is a ValueError
        raise IntegrityError(
            "an encrypted payload field does not open with its key and place "
            "(moved to another event or field, or damaged)"
        ) from None


def encrypt_fields(
    data: dict[str, Any],
    fields: Sequence[str],
    cipher: AESGCM | None,
    key_id: str,
    stream_id: str,
    event_id: str,
    nonce: Callable[[], bytes] = _fresh_nonce,
) -> None:
    """Encrypt a payload dict's personal string fields in place, each bound to its stream,
    event and field name; a destroyed key (``cipher`` None) stores the erased marker.

    ``nonce`` gives 12 random bytes per encrypted field (a bulk append draws all of a
    batch's at once). A value that looks like a tag is still plaintext here.
    """
    for f in fields:
        value = data.get(f)
        if not isinstance(value, str):
            continue
        if cipher is None:
            data[f] = ERASED
            continue
        data[f] = _sealed(cipher, key_id, nonce(), _aad(stream_id, event_id, f), value)


class Shredder:
    """Encrypts and decrypts a log's personal fields; keeps the keys it used (per handle)."""

    def __init__(self, registry: EventRegistry, store: KeyStore | None) -> None:
        self.registry = registry
        self.store = store
        self.personal = {t: registry.spec(t).personal for t in registry.event_types}
        self.subject_field = {t: registry.spec(t).subject for t in registry.event_types}
        self.state_fields = registry.personal_fields
        self._aead: dict[str, AESGCM | None] = {}  # key id -> cipher (None: destroyed)
        self._stream_key: dict[str, str] = {}  # stream id -> key id
        self._subject_key: dict[str, str] = {}  # subject -> key id
        self._pending: dict[str, str] = {}  # bindings not yet written
        self._state_ct: dict[tuple[str, str], tuple[str, str]] = {}

    @property
    def enabled(self) -> bool:
        """Whether this log encrypts (it has a key store and personal fields)."""
        return self.store is not None and bool(self.state_fields)

    def encrypted(self, files: Sequence[str]) -> bool:
        """Whether any of these part files holds an encrypted field (one DuckDB scan of
        their payloads: a log that holds none is read straight from Parquet)."""
        if not self.enabled or not files:
            return False
        import duckdb

        con = duckdb.connect()
        try:
            rel = con.read_parquet(list(files), hive_partitioning=False)
            found = rel.filter(f"contains(payload, '\"{TAG}')").limit(1).fetchall()
        finally:
            con.close()
        return bool(found)

    def last_destroyed(self) -> int:
        """When the latest key was destroyed (µs; 0 if none ever was, or no key store):
        what a cache of decrypted values must match to stay valid."""
        return self.store.last_destroyed() if self.store is not None else 0

    def forget_cached(self) -> None:
        """Drop every cached key (after a subject was forgotten)."""
        self._aead.clear()
        self._stream_key.clear()
        self._subject_key.clear()
        self._state_ct.clear()

    # ------------------------------------------------------------- keys
    def _cipher(self, key_id: str) -> AESGCM | None:
        if key_id not in self._aead:
            self._load([key_id])
        return self._aead.get(key_id)

    def _load(self, key_ids: Iterable[str]) -> None:
        missing = [k for k in set(key_ids) if k not in self._aead]
        if missing and self.store is not None:
            for kid, key in self.store.keys_by_id(missing).items():
                self._aead[kid] = AESGCM(key) if key is not None else None
        for kid in missing:
            self._aead.setdefault(kid, None)  # unknown to the store: nothing can open it

    def stream_key_ids(self, subjects: Mapping[str, str | None]) -> dict[str, str]:
        """The key id of each stream: of its subject when given, else the one it is bound to.

        A stream not yet bound to that key is queued for ``take_bindings`` (written in the
        append's transaction); a subject without a key gets one (its own short commit).
        """
        assert self.store is not None
        out: dict[str, str] = {}
        ask = [s for s, subj in subjects.items() if subj is None and s not in self._stream_key]
        bound = self.store.stream_keys(ask) if ask else {}
        want: dict[str, str] = {}
        for sid, subj in subjects.items():
            if subj is not None:
                want[sid] = subj
            elif sid in self._stream_key:
                out[sid] = self._stream_key[sid]
            elif sid in bound:
                out[sid] = bound[sid]
            else:
                want[sid] = STREAM_SUBJECT_PREFIX + sid
        unknown = [s for s in set(want.values()) if s not in self._subject_key]
        if unknown:
            for subj, (kid, key) in self.store.keys_for_subjects(unknown).items():
                self._subject_key[subj] = kid
                self._aead[kid] = AESGCM(key) if key is not None else None
        for sid, subj in want.items():
            kid = self._subject_key[subj]
            out[sid] = kid
            if self._stream_key.get(sid) != kid:
                self._pending[sid] = kid
        if len(self._stream_key) > _CACHE:
            self._stream_key.clear()
            self._subject_key.clear()
        self._stream_key.update(out)
        return out

    def bind_pending(self) -> None:
        """Write the queued (stream id, key id) bindings, inside the append's transaction."""
        if self._pending and self.store is not None:
            self.store.bind(list(self._pending.items()))
            self._pending.clear()

    def drop_pending(self) -> None:
        """Forget the queued bindings of an append that failed (and their cached keys)."""
        for sid in self._pending:
            self._stream_key.pop(sid, None)
        self._pending.clear()

    # ------------------------------------------------------------- encrypt
    def encrypt_value(self, key_id: str, aad: bytes, value: str) -> str:
        """One field's tagged ciphertext (a destroyed key stores the erased marker)."""
        cipher = self._cipher(key_id)
        if cipher is None:
            return ERASED
        return _sealed(cipher, key_id, _fresh_nonce(), aad, value)

    def subject_of(self, event_type: str, payload: Mapping[str, Any]) -> str | None:
        """The data subject an event names (its Subject field), if any."""
        name = self.subject_field.get(event_type)
        value = payload.get(name) if name else None
        return str(value) if value is not None else None

    def seal_state(self, stream_id: str, state: Any) -> Any:
        """A write-model state (JSON-ready) with its personal fields encrypted."""
        if not self.enabled or stream_id not in self._stream_key:
            return state
        key_id = self._stream_key[stream_id]
        return self._walk_state(
            stream_id, state, lambda f, v: self._state_value(key_id, stream_id, f, v)
        )

    def _state_value(self, key_id: str, stream_id: str, field: str, value: str) -> str:
        cached = self._state_ct.get((stream_id, field))
        if cached is not None and cached[0] == value:
            return cached[1]
        ct = self.encrypt_value(key_id, _aad(stream_id, "state", field), value)
        if len(self._state_ct) > _CACHE:
            self._state_ct.clear()
        self._state_ct[(stream_id, field)] = (value, ct)
        return ct

    def _walk_state(self, stream_id: str, value: Any, fn: Any) -> Any:
        """``value`` with ``fn(field, text)`` applied to every personal string in it.

        Objects are copied only where they hold a personal field (directly or deeper).
        """
        if isinstance(value, dict):
            out = None
            for k, v in value.items():
                if k in self.state_fields and isinstance(v, str) and v:
                    new = fn(k, v)
                elif isinstance(v, dict | list) and v:
                    new = self._walk_state(stream_id, v, fn)
                else:
                    continue
                if new is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = new
            return value if out is None else out
        if isinstance(value, list) and value and isinstance(value[0], dict | list):
            items = [self._walk_state(stream_id, v, fn) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def open_state(self, stream_id: str, state: Any) -> Any:
        """A stored write-model state with its personal fields decrypted (or erased)."""
        if not self.enabled:
            return state
        return self._walk_state(
            stream_id, state, lambda f, v: self.decrypt_value(_aad(stream_id, "state", f), v)
        )

    # ------------------------------------------------------------- decrypt
    def decrypt_value(self, aad: bytes, value: str) -> str:
        """The plaintext of one tagged value; ERASED when its key was destroyed."""
        if not value.startswith(TAG):
            return value
        key_id = value[len(TAG) :].partition(":")[0]
        if key_id not in self._aead:
            self._load([key_id])
        return _opened(self._aead, value, aad)

    def decrypt_payload(
        self, event_type: str, stream_id: str, event_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """A payload dict with its personal fields decrypted (or erased), in place."""
        for f in self.personal.get(event_type, ()):
            v = data.get(f)
            if isinstance(v, str) and v.startswith(TAG):
                data[f] = self.decrypt_value(_aad(stream_id, event_id, f), v)
        return data

    def decrypt_table(self, table: pa.Table) -> pa.Table:
        """An envelope table with its payload column decrypted.

        Each tagged value is replaced where it stands in the stored JSON text (its field
        name gives the associated data, the rest of the text is left as it was): the
        result is the text ``dumps`` makes of the decrypted payload, without parsing and
        encoding every payload again.
        """
        if "payload" not in table.column_names or table.num_rows == 0:
            return table
        payload = table.column("payload")
        mask = pc.match_substring(payload, '"' + TAG)
        if not pc.any(mask).as_py():
            return table
        needed = ("stream_id", "event_id", "event_type")
        if any(c not in table.column_names for c in needed):
            raise ValueError(
                "decrypting payloads needs the stream_id, event_id, event_type columns"
            )
        at_hits = pc.indices_nonzero(mask.combine_chunks())
        texts = payload.take(at_hits).to_pylist()  # only the payloads that hold a sealed value
        sids = table.column("stream_id").take(at_hits).to_pylist()
        eids = table.column("event_id").take(at_hits).to_pylist()
        # event_type is dictionary-encoded in a part: decoded in Arrow, not value by value
        types = table.column("event_type").take(at_hits).cast(pa.string()).to_pylist()
        self._load(set(_KEY_ID.findall("\n".join(texts))))  # one query
        personal, ciphers = self.personal, self._aead
        for i, (text, etype, sid, eid) in enumerate(zip(texts, types, sids, eids, strict=True)):
            fields = personal.get(str(etype), ())
            prefix = f"{sid}\x1f{eid}\x1f"

            def opened(m: re.Match[str], fields: Any = fields, prefix: str = prefix) -> str:
                field = m.group(1)
                if field not in fields:
                    return m.group(0)
                plain = _opened(ciphers, m.group(2), (prefix + field).encode())
                return f'"{field}":{_json_string(plain)}'

            texts[i] = _SEALED_VALUE.sub(opened, text)
        at = table.schema.get_field_index("payload")
        new = pc.replace_with_mask(
            payload.combine_chunks(), mask.combine_chunks(), _string_array(texts, payload.type)
        )
        return table.set_column(at, table.schema.field(at), new)

    def decrypt_columns(self, table: pa.Table, stream: str = "stream_id") -> pa.Table:
        """A table of typed rows (a column per payload field, ``stream``, ``event_id``,
        ``event_type``) with its personal field columns decrypted (or erased).

        The typed twin of ``decrypt_table``: a value is opened where it is a tagged value
        of a field personal to its row's event type, and left as stored otherwise.
        """
        fields = [f for f in sorted(self.state_fields) if f in table.column_names]
        if not self.enabled or table.num_rows == 0 or not fields:
            return table
        personal, ciphers = self.personal, self._aead
        for field in fields:
            column = table.column(field).combine_chunks()
            mask = pc.fill_null(pc.match_substring_regex(column, _TAGGED), False)
            if not pc.any(mask).as_py():
                continue
            at = pc.indices_nonzero(mask)
            values = column.take(at).to_pylist()
            self._load({v[len(TAG) :].partition(":")[0] for v in values})
            sids = table.column(stream).take(at).to_pylist()
            eids = table.column("event_id").take(at).to_pylist()
            types = table.column("event_type").take(at).cast(pa.string()).to_pylist()
            tail = f"\x1f{field}"
            opened = [
                _opened(ciphers, v, f"{sid}\x1f{eid}{tail}".encode())
                if field in personal.get(etype, ())
                else v
                for v, sid, eid, etype in zip(values, sids, eids, types, strict=True)
            ]
            new = pc.replace_with_mask(column, mask, _string_array(opened, column.type))
            table = table.set_column(table.schema.get_field_index(field), field, new)
        return table


def open_shredder(registry: EventRegistry, tail: Any, *, read_only: bool) -> Shredder:
    """The shredder of a log: its key store lives in the tail's database (SQLite file or
    PostgreSQL schema); another kind of tail has none, and its log does not encrypt."""
    from eventlog.tails.sqlite import SqliteTail

    store: KeyStore | None = None
    if isinstance(tail, SqliteTail):
        store = SqliteKeyStore(tail.conn, tail.path, read_only=read_only)
    elif type(tail).__name__ == "PostgresTail":  # psycopg is imported only for such a tail
        from eventlog.keystore_pg import PostgresKeyStore

        store = PostgresKeyStore(tail)
    return Shredder(registry, store)
