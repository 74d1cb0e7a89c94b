"""Column-wise bulk preparation: UUIDs, stream-id checks, payload checks, version numbering."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from eventlog.bulk import check_payloads, check_stream_ids, number_versions, uuid4_array
from eventlog.errors import InvalidStreamIdError, PayloadSchemaError
from eventlog.orders.events import order_registry
from eventlog.orders.log import open_order_log


def test_uuid4_array_makes_valid_distinct_version_4_ids() -> None:
    ids = uuid4_array(1000).to_pylist()
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "", "x" * 201, "a\x00b", "..", ".", "a\\b", "a\x7fb"]
)
def test_check_stream_ids_rejects_unsafe_ids(bad: str) -> None:
    with pytest.raises(InvalidStreamIdError):
        check_stream_ids(pa.array(["fine", bad]))


def test_check_stream_ids_counts_characters_not_bytes() -> None:
    check_stream_ids(pa.array(["é" * 150, "order-1"]))  # 300 bytes, 150 characters


def test_check_payloads_accepts_fitting_rows_and_names_the_misfit() -> None:
    registry = order_registry()
    spec = registry.spec("ItemRemoved")
    good = pa.chunked_array([['{"sku":"a","quantity":1}', '{"quantity":2,"sku":"b"}']])
    check_payloads(registry, spec, good)
    for bad in [
        '{"sku":"a"}',
        '{"sku":"a","quantity":"1"}',
        '{"sku":"a","quantity":1,"x":1}',
        "not json",
        '{\n"sku": "a", "quantity": true}',
    ]:
        with pytest.raises(PayloadSchemaError):
            check_payloads(registry, spec, pa.chunked_array([['{"sku":"a","quantity":1}', bad]]))


def test_pretty_printed_payloads_are_accepted() -> None:
    registry = order_registry()
    spec = registry.spec("ItemRemoved")
    check_payloads(registry, spec, pa.chunked_array([['{\n  "sku": "a",\n  "quantity": 1\n}']]))


def test_number_versions_continues_each_stream_from_its_base() -> None:
    codes = np.array([0, 1, 0, 2, 0, 1])
    base = np.array([5, 0, 1])
    assert number_versions(codes, base).tolist() == [6, 1, 7, 2, 8, 2]


def test_a_bad_payload_in_a_bulk_append_writes_nothing(tmp_path: Path) -> None:
    from eventlog.errors import PayloadSchemaError

    log = open_order_log(tmp_path / "lake")
    good = '{"product_name":"Mug","quantity":1,"sku":"s","unit_price_cents":100}'
    bad = '{"product_name":"Mug","quantity":"one","sku":"s","unit_price_cents":100}'
    table = pa.table(
        {
            "stream_id": ["o-1"] * 3,
            "event_type": ["ItemAdded"] * 3,
            "payload": [good, good, bad],
        }
    )
    with pytest.raises(PayloadSchemaError, match="quantity"):
        log.append_batch(table)
    assert log.head() == 0
    assert log.stream_version("o-1") == 0
    files = [p for p in (tmp_path / "lake" / "events").rglob("*") if p.is_file()]
    assert files == []
    log.append_batch(table.slice(0, 2))
    assert log.head() == 2 and log.verify().ok
    log.close()


def _items(stream_ids: list[str]) -> pa.Table:
    payload = '{"product_name":"Mug","quantity":1,"sku":"s","unit_price_cents":100}'
    n = len(stream_ids)
    return pa.table(
        {"stream_id": stream_ids, "event_type": ["ItemAdded"] * n, "payload": [payload] * n}
    )


def test_stream_heads_lag_behind_bulk_appends_but_every_answer_is_current(
    tmp_path: Path,
) -> None:
    from eventlog.envelope import NewEvent
    from eventlog.errors import ConcurrencyError

    log = open_order_log(tmp_path / "lake", bulk_heads_lag=10)
    log.append_batch(_items(["a", "b", "a"]))
    log.append_batch(_items(["a", "c"]), expected_versions={"a": 2, "c": "no_stream"})
    # three bulk appends without writing per-stream heads; the third passes the lag limit
    with pytest.raises(ConcurrencyError):
        log.append_batch(_items(["b"]), expected_versions={"b": 2})
    assert log.tail.meta("heads_head") < log.head()
    assert log.verify().ok
    assert log.info().streams == 3
    table = log.read_all()
    versions = list(zip(table["stream_id"].to_pylist(), table["version"].to_pylist(), strict=True))
    assert versions == [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1)]
    assert log.stream_version("a") == 3  # a reader catches the heads up
    assert log.tail.meta("heads_head") == log.head()
    log.append_batch(_items(["c"] * 12))
    log.append_batch(_items(["c"]))  # 13 lagging events > 10: caught up first
    assert log.tail.meta("heads_head") == log.head() - 1 == 17
    item = NewEvent(
        "ItemAdded", {"product_name": "Mug", "quantity": 1, "sku": "s", "unit_price_cents": 100}
    )
    res = log.append("c", [item], expected_version=14)  # a tail append sees every bulk event
    assert (res.first_version, log.stream_version("c")) == (15, 15)
    assert log.verify().ok
    log.close()


def test_a_big_bulk_append_lands_as_several_parts_that_read_back_as_one_batch(
    tmp_path: Path,
) -> None:

    log = open_order_log(tmp_path / "lake", bulk_part_rows=4)
    table = _items(["a", "b", "a", "c", "a", "b", "d", "a", "e", "f"])
    res = log.append_batch(table)
    assert (res.first_position, res.last_position) == (1, 10)
    assert [(p.first, p.last) for p in log._live_parts()] == [(1, 4), (5, 8), (9, 10)]
    back = log.read_all()
    assert back["stream_id"].to_pylist() == table["stream_id"].to_pylist()
    assert back["version"].to_pylist() == [1, 1, 2, 1, 3, 2, 1, 4, 1, 1]
    assert log.verify().ok
    log.close()


def test_bulk_writers_on_two_handles_keep_versions_dense(tmp_path: Path) -> None:
    """Each handle caches the lagging heads; it must see what the other appended since."""
    from eventlog.envelope import NewEvent

    one = open_order_log(tmp_path / "lake")
    two = open_order_log(tmp_path / "lake")
    one.append_batch(_items(["a", "b"]))
    one.append_batch(_items(["a"]))  # from here on ``one`` keeps the lagging heads cached
    two.append_batch(_items(["a", "c"]))
    one.append_batch(_items(["a", "c", "b"]))
    item = NewEvent(
        "ItemAdded", {"product_name": "Mug", "quantity": 1, "sku": "s", "unit_price_cents": 100}
    )
    two.append("b", [item], expected_version=2)  # folds the lagging heads in
    one.append_batch(_items(["b", "a"]))
    table = one.read_all()
    pairs = list(zip(table["stream_id"].to_pylist(), table["version"].to_pylist(), strict=True))
    assert pairs == [
        ("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("a", 4), ("c", 2), ("b", 2),
        ("b", 3), ("b", 4), ("a", 5),
    ]  # fmt: skip
    assert one.verify().ok
    one.close()
    two.close()
