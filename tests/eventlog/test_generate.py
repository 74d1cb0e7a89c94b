"""The seeded generator: deterministic, realistic, and only what the Order rules accept."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from eventlog.decider import fold
from eventlog.envelope import records_from_batch
from eventlog.errors import InvalidInputError
from eventlog.handler import load_state
from eventlog.log import EventLog
from eventlog.orders import ORDER_DECIDER, ORDER_EVENT_TYPES, state_from_json
from eventlog.orders.generate import CATALOGUE, GenerateSummary, generate, note_text, price_in
from eventlog.orders.log import open_order_log


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    """A lake with 300 orders over 30 days (seed 11)."""
    lake = tmp_path_factory.mktemp("gen") / "lake"
    summary = generate(lake, orders=300, days=30, seed=11)
    return lake, summary


@pytest.fixture(scope="module")
def table(generated: tuple[Path, GenerateSummary]) -> pa.Table:
    with open_order_log(generated[0], create=False, seal_on_close=False) as log:
        return log.read_all()


def _parts_digest(lake: Path) -> dict[str, str]:
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((lake / "events").rglob("*.parquet"))
    }


def test_same_seed_gives_the_same_log(tmp_path: Path) -> None:
    """The same events, ids and times; the parts' bytes differ only in the ciphertexts of
    personal fields (random per-customer keys and nonces: docs/erasure.md)."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, orders=60, days=6, seed=5)
    generate(b, orders=60, days=6, seed=5)
    generate(c, orders=60, days=6, seed=6)
    tables = []
    for lake in (a, b, c):
        with open_order_log(lake, create=False) as log:
            tables.append(log.read_all())
    assert tables[0].num_rows == 489  # what seed 5 makes of 60 orders over 6 days
    assert tables[0].equals(tables[1])  # event ids, positions, recorded_at included
    assert _parts_digest(a).keys() == _parts_digest(b).keys()
    ids_a = set(tables[0].column("event_id").to_pylist())
    ids_c = set(tables[2].column("event_id").to_pylist())
    assert not ids_a & ids_c
    assert tables[0].column("payload").to_pylist() != tables[2].column("payload").to_pylist()


def test_summary_matches_the_log(generated: tuple[Path, GenerateSummary], table: pa.Table) -> None:
    _, summary = generated
    types = Counter(table.column("event_type").cast(pa.string()).to_pylist())
    assert summary.events == summary.head == table.num_rows
    assert summary.by_type == dict(types)
    assert summary.rejected == 0, summary.rejections
    assert summary.orders == 300
    assert len(set(table.column("stream_id").to_pylist())) == 300
    occurred = table.column("occurred_at").to_pylist()
    assert summary.first_occurred_at == min(occurred)
    assert summary.last_occurred_at == max(occurred)
    end = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=30)
    assert all(datetime(2026, 1, 1, tzinfo=UTC) <= t < end for t in occurred)
    assert json.loads(json.dumps(summary.to_json()))["events"] == summary.events


def test_every_event_type_occurs(generated: tuple[Path, GenerateSummary]) -> None:
    _, summary = generated
    assert set(summary.by_type) == set(ORDER_EVENT_TYPES)


def test_some_events_are_back_dated_and_none_recorded_before_occurring(table: pa.Table) -> None:
    occurred = table.column("occurred_at").to_pylist()
    recorded = table.column("recorded_at").to_pylist()
    lags = [r - o for o, r in zip(occurred, recorded, strict=True)]
    assert min(lags) >= timedelta(0)
    late = [
        t
        for t, lag in zip(table.column("event_type").to_pylist(), lags, strict=True)
        if lag > timedelta(hours=2)
    ]
    assert len(late) == 68
    assert {"OrderDelivered", "CustomerNoteAdded"} <= set(late)
    assert recorded == sorted(recorded)


def test_occurred_at_never_decreases_within_a_stream(table: pa.Table) -> None:
    """The documented rule that keeps back-dated events commuting with the rest."""
    by_stream: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    for sid, version, occurred in zip(
        table.column("stream_id").to_pylist(),
        table.column("version").to_pylist(),
        table.column("occurred_at").to_pylist(),
        strict=True,
    ):
        by_stream[sid].append((version, occurred))
    for sid, rows in by_stream.items():
        times = [t for _, t in sorted(rows)]
        assert times == sorted(times), sid


def test_notes_vary_and_cover_many_themes(table: pa.Table) -> None:
    notes = [
        json.loads(p)["note"]
        for p, t in zip(
            table.column("payload").to_pylist(),
            table.column("event_type").cast(pa.string()).to_pylist(),
            strict=True,
        )
        if t == "CustomerNoteAdded"
    ]
    assert (len(notes), len(set(notes))) == (180, 171)  # seed 11: 171 distinct of 180
    text = " ".join(notes).lower()
    for word in ("gift", "soaked", "crushed", "size", "address", "allerg", "neighbour", "parcel"):
        assert word in text, word


def test_customers_repeat_and_money_is_in_minor_units(table: pa.Table) -> None:
    created = [
        json.loads(p)
        for p, t in zip(
            table.column("payload").to_pylist(),
            table.column("event_type").cast(pa.string()).to_pylist(),
            strict=True,
        )
        if t == "OrderCreated"
    ]
    per_customer = Counter(c["customer_id"] for c in created)
    assert max(per_customer.values()) == 27  # a regular
    assert len(per_customer) < len(created) == 300
    assert {c["currency"] for c in created} == {"EUR", "USD", "GBP"}
    assert all(price_in(p, cur) > 0 for p in CATALOGUE for cur in ("EUR", "USD", "GBP"))


def test_log_verifies_clean(generated: tuple[Path, GenerateSummary]) -> None:
    with open_order_log(generated[0], create=False, seal_on_close=False) as log:
        report = log.verify()
    assert report.ok, report.problems
    assert report.head == generated[1].head


def test_fold_of_read_back_events_equals_the_write_model(
    generated: tuple[Path, GenerateSummary], table: pa.Table
) -> None:
    streams = sorted(set(table.column("stream_id").to_pylist()))
    sample = random.Random(0).sample(streams, 40)
    with open_order_log(generated[0], create=False, seal_on_close=False) as log:
        for sid in sample:
            records = records_from_batch(log.read_stream(sid))
            events = [
                log.registry.decode(r.event_type, r.schema_version, r.payload) for r in records
            ]
            by_version = fold(ORDER_DECIDER, events, ORDER_DECIDER.initial(sid))
            by_time = [
                e
                for _, e in sorted(
                    zip(records, events, strict=True),
                    key=lambda x: (x[0].occurred_at, x[0].version),
                )
            ]
            assert fold(ORDER_DECIDER, by_time, ORDER_DECIDER.initial(sid)) == by_version
            version, stored, _ = log.stream_state(sid)
            assert stored is not None and state_from_json(stored) == by_version
            assert load_state(log, ORDER_DECIDER, sid) == (version, by_version)


def test_repeating_a_run_on_the_same_lake_appends_nothing(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    first = generate(lake, orders=30, days=4, seed=9)
    again = generate(lake, orders=30, days=4, seed=9)
    assert first.events == first.head == 231
    assert again.events == 0 and again.head == first.head


def test_generate_into_an_open_log_restores_its_clock(log: EventLog) -> None:
    clock, ids = log.clock, log.id_factory
    calls: list[tuple[float, int]] = []
    summary = generate(
        log, orders=20, days=3, seed=2, progress=lambda done, n: calls.append((done, n))
    )
    assert log.clock is clock and log.id_factory is ids
    assert summary.events == log.head() == 160
    assert log.sealed_head() == log.head()
    assert calls[-1] == (1.0, summary.events)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": 0, "days": 3, "seed": 1}, "orders"),
        ({"orders": 5, "days": 0, "seed": 1}, "days"),
        ({"orders": True, "days": 3, "seed": 1}, "orders"),
        ({"orders": 5, "days": 3, "seed": "x"}, "seed"),
        ({"orders": 5, "days": 3, "seed": 1, "start": datetime(2026, 1, 1)}, "timezone"),
    ],
)
def test_bad_arguments_write_nothing(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(InvalidInputError, match=message):
        generate(lake, **kwargs)  # type: ignore[arg-type]
    assert not lake.exists()


def test_start_moves_the_period(tmp_path: Path) -> None:
    start = datetime(2027, 3, 1, tzinfo=UTC)
    summary = generate(tmp_path / "lake", orders=10, days=2, seed=1, start=start)
    assert summary.first_occurred_at is not None and summary.first_occurred_at >= start
    assert summary.last_recorded_at is not None
    assert summary.last_recorded_at < start + timedelta(days=2)


def test_note_phrasings_fill_in_their_context() -> None:
    rng = random.Random(1)
    ctx = {
        "first": "Ada", "city": "Leeds", "street": "High Street 4", "postal": "LS1 4AP", "n": 3,
        "weekday": "Monday", "relation": "mum", "count": 2, "k": 1, "agent": "Mei",
        "product": "Cork Yoga Mat", "carrier": "DPD",
    }  # fmt: skip
    texts = {note_text(rng, "damaged", ctx) for _ in range(200)}
    assert len(texts) == 160  # of 200 draws from 8 phrasings × openers × closers
    assert not any("{" in t for t in texts)
