"""Crypto-shredding in the log: personal fields encrypted per customer, erased once forgotten."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from eventlog.envelope import NewEvent
from eventlog.errors import IntegrityError
from eventlog.forget import UnknownSubjectError
from eventlog.orders.log import forget_customer, open_order_log
from eventlog.shred import ERASED, TAG, Shredder
from tests.support.backends import BACKENDS

NAME, EMAIL, STREET, NOTE = (
    "Ottoline Vexworth",
    "ovex@example.org",
    "9 Quillon Street",
    "gate code 4417",
)


def created(customer: str = "c-1", name: str = NAME) -> NewEvent:
    return NewEvent(
        "OrderCreated",
        {
            "customer_id": customer,
            "customer_name": name,
            "customer_email": EMAIL,
            "currency": "EUR",
            "channel": "web",
        },
    )


def address() -> NewEvent:
    return NewEvent(
        "ShippingAddressUpdated",
        {
            "recipient": NAME,
            "street": STREET,
            "city": "Lyon",
            "postal_code": "69001",
            "country": "FR",
        },
    )


def note(text: str = NOTE) -> NewEvent:
    return NewEvent("CustomerNoteAdded", {"author": "support", "note": text})


def raw_files(lake: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file())


def test_personal_fields_never_reach_the_files_in_clear(lake: Path) -> None:
    log = open_order_log(lake)
    log.append("o-1", [created(), address(), note()])
    log.seal()
    log.append("o-1", [note("second gate code Kw4-Ottoline-Door")])
    log.append_batch(
        pa.table(
            {
                "stream_id": ["o-2", "o-2"],
                "event_type": ["OrderCreated", "CustomerNoteAdded"],
                "payload": [
                    json.dumps(created("c-2").payload),
                    json.dumps({"author": "a", "note": "bulk gate code Qx7-Vexworth-Gate"}),
                ],
            }
        )
    )
    payloads = [json.loads(p) for p in log.read_all().column("payload").to_pylist()]
    assert payloads[0]["customer_name"] == NAME and payloads[2]["note"] == NOTE
    assert payloads[-1]["note"] == "bulk gate code Qx7-Vexworth-Gate"
    log.close()
    data = raw_files(lake)
    for value in (NAME, EMAIL, STREET, NOTE, "Kw4-Ottoline-Door", "Qx7-Vexworth-Gate"):
        assert value.encode() not in data, value
    assert TAG.encode() in data
    # the stored write-model state holds its personal fields encrypted too
    with sqlite3.connect(lake / "tail.sqlite") as con:
        states = [r[0] for r in con.execute("SELECT state FROM streams") if r[0]]
    assert all(NAME not in s for s in states)


def test_a_ciphertext_moved_to_another_event_does_not_open(lake: Path) -> None:
    log = open_order_log(lake, seal_on_close=False)
    log.append("o-1", [note("first"), note("second")])
    log.close()
    with sqlite3.connect(lake / "tail.sqlite") as con:
        rows = con.execute("SELECT position, payload FROM tail ORDER BY position").fetchall()
        con.execute("UPDATE tail SET payload = ? WHERE position = ?", (rows[0][1], rows[1][0]))
    log = open_order_log(lake, read_only=True)
    with pytest.raises(IntegrityError, match="does not open"):
        log.read_all()
    log.close()


def test_forget_erases_on_every_read_path_and_only_that_customer(lake: Path) -> None:
    log = open_order_log(lake)
    log.append("o-1", [created("c-1"), address(), note()])
    log.append("o-2", [created("c-2", "Someone Else")])
    log.seal()
    log.append("o-1", [note("after the seal")])  # a tail row, bound to c-1's key
    result = forget_customer(log, "c-1")
    assert not result.already and result.position == log.head()
    first = json.loads(log.read_stream("o-1").column("payload")[0].as_py())
    assert first["customer_name"] == first["customer_email"] == ERASED
    assert first["customer_id"] == "c-1"
    assert log.events_at([5])[0].payload["note"] == ERASED
    assert (
        json.loads(log.read_all().column("payload")[3].as_py())["customer_name"] == "Someone Else"
    )
    # a later command's events and states for a forgotten customer store the marker
    log.append("o-1", [note("too late")])
    assert log.events_at([log.head()])[0].payload["note"] == ERASED
    again = forget_customer(log, "c-1")
    assert again.already and again.position is None
    with pytest.raises(UnknownSubjectError):
        forget_customer(log, "c-404")
    log.close()
    reopened = open_order_log(lake, read_only=True)
    assert json.loads(reopened.read_stream("o-1").column("payload")[2].as_py())["note"] == ERASED
    reopened.close()


def test_the_destroyed_key_leaves_no_bytes_in_the_tail_database(lake: Path) -> None:
    log = open_order_log(lake)
    log.append("o-1", [created("c-1")])
    with sqlite3.connect(lake / "tail.sqlite") as con:
        (key,) = con.execute("SELECT key FROM subject_keys WHERE subject = 'c-1'").fetchone()
    assert key in raw_files(lake)
    forget_customer(log, "c-1")
    log.close()
    assert len(key) == 32 and key not in raw_files(lake)


def test_a_lake_written_before_encryption_still_reads(lake: Path) -> None:
    log = open_order_log(lake)
    log.shredder = Shredder(log.registry, None)  # a log without a key store writes clear text
    log.append("o-1", [created(), note()])
    log.close()
    assert NAME.encode() in raw_files(lake)
    again = open_order_log(lake)
    again.append("o-1", [note("new and encrypted")])
    notes = [json.loads(p).get("note") for p in again.read_all().column("payload").to_pylist()]
    assert notes == [None, NOTE, "new and encrypted"]
    assert again.verify().ok
    again.close()


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_forget_on_every_tail(request: pytest.FixtureRequest, lake: Path, backend: str) -> None:
    """The key store lives in the tail's database, SQLite file or PostgreSQL schema."""
    BACKENDS[backend](request, lake)
    log = open_order_log(lake)
    log.append("o-1", [created("c-1"), note()])
    log.append_batch(
        pa.table(
            {
                "stream_id": ["o-2", "o-1"],
                "event_type": ["OrderCreated", "CustomerNoteAdded"],
                "payload": [
                    json.dumps(created("c-2", "Other Person").payload),
                    json.dumps({"author": "a", "note": "bulk gate code Qx7-Vexworth-Gate"}),
                ],
            }
        )
    )
    log.seal()
    assert NAME.encode() not in raw_files(lake) and b"Qx7-Vexworth-Gate" not in raw_files(lake)
    assert forget_customer(log, "c-1").position == 5
    payloads = [json.loads(p) for p in log.read_all().column("payload").to_pylist()]
    assert [p.get("note") for p in payloads[:4]] == [None, ERASED, None, ERASED]
    assert payloads[0]["customer_name"] == ERASED and payloads[2]["customer_name"] == "Other Person"
    assert forget_customer(log, "c-1").already
    log.close()


def _typed(table: pa.Table, fields: list[str]) -> pa.Table:
    """Envelope rows as typed rows: a column per payload field (as order_events has)."""
    payloads = [json.loads(p) for p in table.column("payload").to_pylist()]
    cols = {c: table.column(c).cast(pa.string()) for c in ("stream_id", "event_id", "event_type")}
    for f in fields:
        cols[f] = pa.array([p.get(f) for p in payloads], pa.string())
    return pa.table(cols)


def test_typed_columns_open_as_the_stored_json_does(lake: Path) -> None:
    log = open_order_log(lake)
    log.append("o-1", [created(), address(), note()])
    log.append("o-2", [created("c-2", "Second Person"), note("another")])
    forget_customer(log, "c-2")
    log.seal()
    raw = pa.concat_tables(log.store.read_range(p, p.first - 1, p.last, None) for p in log.parts())
    fields = [*sorted(log.shredder.state_fields), "currency"]
    typed = _typed(raw, fields)
    assert any(str(v).startswith(TAG) for v in typed.column("customer_name").to_pylist())
    opened = log.shredder.decrypt_columns(typed)
    assert opened.equals(_typed(log.shredder.decrypt_table(raw), fields))
    names = opened.column("customer_name").to_pylist()
    assert NAME in names and ERASED in names and "Second Person" not in names
    # a tagged value where the event type has no such personal field stays as stored
    shipped = pa.table(
        {
            "stream_id": ["o-1"],
            "event_id": ["e-x"],
            "event_type": ["OrderShipped"],
            "note": [typed.column("note").to_pylist()[2]],
        }
    )
    assert log.shredder.decrypt_columns(shipped).equals(shipped)
    # a ciphertext moved to another event does not open
    moved = typed.set_column(
        typed.schema.get_field_index("note"),
        "note",
        pa.array([None, None, typed.column("note")[2].as_py(), None, None, None]),
    ).slice(0, 3)
    moved = moved.set_column(1, "event_id", pa.array(["a", "b", "c"]))
    with pytest.raises(IntegrityError, match="does not open"):
        log.shredder.decrypt_columns(moved)
    log.close()
