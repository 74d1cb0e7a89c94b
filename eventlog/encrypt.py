"""Encrypting at append: the rows of a commit and the payloads of a bulk table.

Both take the keys from the log's ``Shredder`` (``eventlog.shred``) with one look-up per
batch, and keep their loops flat: this is the writers' cost of encryption (see
docs/benchmarks.md, "Erasure").
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.codec import dumps
from eventlog.shred import Shredder, _string_array, encrypt_fields


def encrypt_requests(log: Any, stream_ids: Sequence[str], prepared: Sequence[list[Any]]) -> None:
    """Encrypt the personal fields of each request's rows (``commit.Row``), in place.

    One key look-up for the whole batch (none when the handle knows every stream's key):
    a stream's subject is the first subject field among its rows, else the key the stream
    is bound to. A forgotten customer's fields are stored, and read back, as ``ERASED``.
    """
    sh: Shredder = log.shredder
    if not sh.enabled:
        return
    personal, subject_field = sh.personal, sh.subject_field
    subjects: dict[str, str | None] = {}
    for sid, rows in zip(stream_ids, prepared, strict=True):
        for row in rows:
            marked = personal[row.event_type] or subject_field[row.event_type]
            if marked and subjects.get(sid) is None:
                subjects[sid] = sh.subject_of(row.event_type, row.decoded[0])
    if not subjects:
        return
    known = sh._stream_key
    if all(subj is None and sid in known for sid, subj in subjects.items()):
        keys = known
    else:
        keys = sh.stream_key_ids(subjects)
    for sid, rows in zip(stream_ids, prepared, strict=True):
        for row in rows:
            fields = personal[row.event_type]
            if not fields:
                continue
            kid = keys[sid]
            cipher = sh._cipher(kid)
            data = dict(row.decoded[0])
            encrypt_fields(data, fields, cipher, kid, sid, row.event_id)
            row.payload = dumps(data)
            if cipher is None:  # what is read back is what was stored
                row.decoded = (data, row.decoded[1])


def encrypt_batch(log: Any, table: pa.Table, event_ids: pa.Array) -> pa.Table:
    """A bulk table with the personal fields of its payloads encrypted (rows of other
    types untouched; a payload that is not JSON is left for the schema check to refuse).

    Only the rows of personal event types are converted to Python; the nonces of the
    whole batch come from one ``os.urandom`` call, and the loop is kept flat: this is
    the bulk path's cost of encryption (see docs/benchmarks.md).
    """
    sh: Shredder = log.shredder
    etypes = table.column("event_type").cast(pa.string())
    wanted = [
        t
        for t in pc.unique(etypes).to_pylist()
        if t in sh.personal and (sh.personal[t] or sh.subject_field[t])
    ]
    if not sh.enabled or not wanted:
        return table
    mask = pc.is_in(etypes, pa.array(wanted, pa.string())).combine_chunks()
    hits = pc.indices_nonzero(mask)
    texts = table.column("payload").take(hits).to_pylist()
    sids = table.column("stream_id").cast(pa.string()).take(hits).to_pylist()
    types = etypes.take(hits).to_pylist()
    eids = pa.chunked_array([event_ids]).combine_chunks().take(hits).to_pylist()
    parsed: list[dict[str, Any] | None] = []
    subjects: dict[str, str | None] = {}
    loads = json.loads
    for sid, etype, text in zip(sids, types, texts, strict=True):
        try:
            data = loads(text)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            data = None
        parsed.append(data)
        if data is not None and subjects.get(sid) is None:
            subjects[sid] = sh.subject_of(etype, data)
    keys = sh.stream_key_ids(subjects)
    ciphers = {kid: sh._cipher(kid) for kid in set(keys.values())}
    personal = sh.personal
    nonces = os.urandom(12 * sum(len(personal[t]) for t in types))
    # one urandom call for the whole batch, 12 bytes per encrypted field
    next_nonce = (nonces[i : i + 12] for i in range(0, len(nonces), 12)).__next__
    for j, (sid, etype, eid, data) in enumerate(zip(sids, types, eids, parsed, strict=True)):
        fields = personal[etype]
        if data is None or not fields:
            continue
        kid = keys[sid]
        encrypt_fields(data, fields, ciphers[kid], kid, sid, eid, next_nonce)
        texts[j] = dumps(data)
    payload = table.column("payload").combine_chunks()
    at = table.schema.get_field_index("payload")
    new = pc.replace_with_mask(payload, mask, _string_array(texts, payload.type))
    return table.set_column(at, "payload", new)
