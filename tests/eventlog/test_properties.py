"""Property tests of the log's invariants (docs/architecture.md): hypothesis drives random histories."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from eventlog.decider import fold
from eventlog.envelope import NewEvent
from eventlog.errors import ConcurrencyError, InvalidInputError
from eventlog.handler import CommandHandler, load_state
from eventlog.log import EventLog
from eventlog.orders import (
    ORDER_DECIDER,
    AddCustomerNote,
    AddItem,
    ApplyDiscount,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CreateOrder,
    DeliverOrder,
    FailPayment,
    IssueRefund,
    RemoveItem,
    ShipOrder,
    UpdateShippingAddress,
    state_from_json,
)
from eventlog.orders.errors import OrderRuleError
from eventlog.orders.log import open_order_log
from tests.support.logs import T0, ManualClock, created, note

# Enough examples to reach the rarer paths (paid, shipped, refunded), and shrinking on, so
# a failure comes back as the smallest history that shows it.
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# one operation: (stream, events, expected-version kind, command id or None, seal after)
operation = st.tuples(
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from(["right", "any", "wrong", "no_stream", "bad_payload"]),
    st.one_of(st.none(), st.integers(0, 5).map(lambda i: f"cmd-{i}")),
    st.booleans(),
)


def _check_dense(log: EventLog) -> None:
    table = log.read_all()
    pos = table.column("position").to_pylist()
    assert pos == list(range(1, log.head() + 1))
    ids = table.column("event_id").to_pylist()
    assert len(set(ids)) == len(ids)
    per_stream: dict[str, list[int]] = {}
    for sid, ver in zip(
        table.column("stream_id").to_pylist(), table.column("version").to_pylist(), strict=True
    ):
        per_stream.setdefault(sid, []).append(ver)
    for sid, versions in per_stream.items():
        assert versions == list(range(1, len(versions) + 1))
        assert log.stream_version(sid) == len(versions)
    rec = table.column("recorded_at").to_pylist()
    assert rec == sorted(rec)


@SETTINGS
@given(ops=st.lists(operation, max_size=25), clock_steps=st.lists(st.integers(-90, 90)))
def test_random_appends_keep_every_invariant(
    ops: list[tuple[int, int, str, str | None, bool]], clock_steps: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        log = open_order_log(Path(tmp), clock=clock, seal_max_events=7)
        done: dict[str, tuple[int, int]] = {}
        for i, (stream, n, kind, cid, seal) in enumerate(ops):
            if clock_steps:
                clock.advance(minutes=clock_steps[i % len(clock_steps)])
            sid = f"s-{stream}"
            current = log.stream_version(sid)
            expected: Any = {
                "right": current,
                "any": "any",
                "wrong": current + 1,
                "no_stream": "no_stream",
            }.get(kind, "any")
            events = [note(f"{i}.{k}") for k in range(n)]
            if kind == "bad_payload":
                events.append(NewEvent("CustomerNoteAdded", {"author": 7, "note": "x"}))
            head = log.head()
            should_clash = kind == "wrong" or (kind == "no_stream" and current > 0)
            try:
                res = log.append(sid, events, expected_version=expected, command_id=cid)
            except ConcurrencyError as exc:
                assert should_clash and cid not in done
                assert (exc.expected, exc.actual) == (expected, current)
                assert log.head() == head, "a rejected append wrote nothing"
                continue
            except InvalidInputError:
                assert n == 0 or kind == "bad_payload"
                assert log.head() == head, "a rejected append wrote nothing"
                continue
            if cid is not None and cid in done:
                assert res.duplicate and (res.first_position, res.last_position) == done[cid]
                assert log.head() == head, "a repeated command id appended nothing"
            else:
                assert not should_clash and not res.duplicate
                assert res.last_position - res.first_position + 1 == n
                if cid is not None:
                    done[cid] = (res.first_position, res.last_position)
            if seal:
                log.seal()
        _check_dense(log)
        report = log.verify()
        assert report.ok, report.problems
        log.tail.close()


skus = st.sampled_from(["sku-a", "sku-b", "sku-c"])
PAYMENT_IDS = st.sampled_from(["p-1", "p-2"])
AMOUNT = st.one_of(st.just(-1), st.integers(1, 20_000))
order_command = st.one_of(
    st.tuples(st.just("add"), skus, st.integers(1, 4), st.integers(0, 5000)),
    st.tuples(st.just("remove"), skus, st.integers(1, 4), st.just(0)),
    st.tuples(
        st.just("discount"), st.sampled_from(["TEN", "VIP"]), st.integers(1, 900), st.just(0)
    ),
    st.tuples(
        st.just("note"), st.text(min_size=1, max_size=30).filter(str.strip), st.just(0), st.just(0)
    ),
    st.tuples(st.just("cancel"), st.just("changed my mind"), st.just(0), st.just(0)),
    # payments and shipping; amount -1 stands for "what the order needs now" (its total)
    st.tuples(st.just("address"), st.sampled_from(["Lyon", "Leeds"]), st.just(0), st.just(0)),
    st.tuples(st.just("authorize"), PAYMENT_IDS, st.just(0), AMOUNT),
    st.tuples(st.just("capture"), PAYMENT_IDS, st.just(0), AMOUNT),
    st.tuples(st.just("fail"), PAYMENT_IDS, st.just(0), st.just(0)),
    st.tuples(st.just("ship"), st.sampled_from(["DHL", "UPS"]), st.just(0), st.just(0)),
    st.tuples(st.just("deliver"), st.just(""), st.just(0), st.just(0)),
    st.tuples(st.just("refund"), st.just("damaged"), st.just(0), AMOUNT),
)
HAPPY_PATH = [
    (0, ("add", "sku-a", 2, 500)),
    (0, ("address", "Lyon", 0, 0)),
    (0, ("authorize", "p-1", 0, -1)),
    (0, ("capture", "p-1", 0, -1)),
    (0, ("ship", "DHL", 0, 0)),
    (0, ("deliver", "", 0, 0)),
    (0, ("refund", "damaged", 0, 300)),
    (1, ("add", "sku-b", 1, 700)),
    (1, ("fail", "p-9", 0, 0)),
    (1, ("cancel", "changed my mind", 0, 0)),
]


def _create(order_id: str) -> CreateOrder:
    return CreateOrder(
        order_id=order_id,
        at=T0,
        customer_id="c-1",
        customer_name="Ada",
        customer_email="ada@example.com",
        currency="EUR",
        channel="web",
    )


def _command(order_id: str, at: Any, spec: tuple[str, str, int, int], total: int = 0) -> Any:
    kind, text, qty, price = spec
    amount = max(total, 1) if price == -1 else price
    if kind == "address":
        return UpdateShippingAddress(
            order_id=order_id,
            at=at,
            recipient="Ada",
            street="1 Rue",
            city=text,
            postal_code="69001",
            country="FR",
        )
    if kind == "authorize":
        return AuthorizePayment(
            order_id=order_id, at=at, payment_id=text, amount_cents=amount, method="card"
        )
    if kind == "capture":
        return CapturePayment(order_id=order_id, at=at, payment_id=text, amount_cents=amount)
    if kind == "fail":
        return FailPayment(order_id=order_id, at=at, payment_id=text, reason="declined")
    if kind == "ship":
        return ShipOrder(order_id=order_id, at=at, carrier=text, tracking_number="T-1")
    if kind == "deliver":
        return DeliverOrder(order_id=order_id, at=at)
    if kind == "refund":
        return IssueRefund(order_id=order_id, at=at, amount_cents=amount, reason=text)
    if kind == "add":
        return AddItem(
            order_id=order_id,
            at=at,
            sku=text,
            product_name=text.upper(),
            quantity=qty,
            unit_price_cents=price,
        )
    if kind == "remove":
        return RemoveItem(order_id=order_id, at=at, sku=text, quantity=qty)
    if kind == "discount":
        return ApplyDiscount(order_id=order_id, at=at, code=text, amount_cents=qty)
    if kind == "note":
        return AddCustomerNote(order_id=order_id, at=at, author="customer", note=text)
    return CancelOrder(order_id=order_id, at=at, reason=text)


@SETTINGS
@given(
    commands=st.lists(st.tuples(st.integers(0, 2), order_command), max_size=30),
    seal_every=st.integers(1, 10),
)
@example(commands=HAPPY_PATH, seal_every=3)
def test_fold_of_read_back_events_equals_the_write_model(
    commands: list[tuple[int, tuple[str, str, int, int]]], seal_every: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = open_order_log(Path(tmp), clock=ManualClock(), seal_max_events=seal_every)
        orders = [f"order-{i}" for i in range(3)]
        handler = CommandHandler(log, ORDER_DECIDER)
        for oid in orders:
            handler.handle(oid, _create(oid))
        outcomes: Counter[str] = Counter()
        for i, (which, spec) in enumerate(commands):
            oid = orders[which]
            head = log.head()
            version, before = load_state(log, ORDER_DECIDER, oid)
            total = before.total_cents
            command = _command(oid, T0 + timedelta(minutes=i), spec, total)
            try:
                result = handler.handle(oid, command)
            except (OrderRuleError, InvalidInputError):  # a business "no" or a bad amount
                outcomes["rejected"] += 1
                assert log.head() == head, f"a rejected {spec[0]} wrote events"
                continue
            outcomes["ok"] += 1
            outcomes["events"] += len(result.events)
            assert log.head() == head + len(result.events)
            assert [e.version for e in result.events] == [
                version + 1 + k for k in range(len(result.events))
            ]
        assert outcomes["ok"] + outcomes["rejected"] == len(commands)
        assert log.head() == len(orders) + outcomes["events"]
        if commands == HAPPY_PATH:  # the explicit example reaches every status
            first = load_state(log, ORDER_DECIDER, orders[0])[1]
            second = load_state(log, ORDER_DECIDER, orders[1])[1]
            assert (first.status, first.captured_cents, first.refunded_cents) == (
                "delivered",
                1000,
                300,
            )
            assert (second.status, second.payment_failures) == ("cancelled", 1)
            assert outcomes == Counter({"ok": 10, "events": 10})
        for oid in orders:
            records = log.read_stream(oid)
            events = [
                log.registry.decode(t, v, p)
                for t, v, p in zip(
                    records.column("event_type").to_pylist(),
                    records.column("schema_version").to_pylist(),
                    records.column("payload").to_pylist(),
                    strict=True,
                )
            ]
            replayed = fold(ORDER_DECIDER, events, ORDER_DECIDER.initial(oid))
            version, stored, state_version = log.stream_state(oid)
            assert stored is not None and state_version == version == len(events)
            assert state_from_json(stored) == replayed
            assert handler.load(oid) == (version, replayed)  # the state it kept
            fresh = open_order_log(Path(tmp), seal_on_close=False)
            assert load_state(fresh, ORDER_DECIDER, oid) == (version, replayed)  # decoded
            fresh.close()
        assert log.verify().ok
        log.tail.close()


def test_a_handle_never_decides_on_a_state_another_writer_moved_past(tmp_path: Path) -> None:
    one_log = open_order_log(tmp_path, clock=ManualClock())
    two_log = open_order_log(tmp_path, clock=ManualClock())
    one = CommandHandler(one_log, ORDER_DECIDER)
    two = CommandHandler(two_log, ORDER_DECIDER)
    one.handle("o-1", _create("o-1"))  # ``one`` keeps the state it decided
    two.handle("o-1", _command("o-1", T0, ("add", "mug", 2, 500)))
    # ``one`` decides on the state it kept, the append finds the stream moved, and it
    # decides again on the state read afresh: not a retry the caller has to allow for
    tea = _command("o-1", T0, ("add", "tea", 1, 300))
    after = one.handle("o-1", tea, retries=0)
    assert after.state is not None
    assert (after.state.item_count, after.state.subtotal_cents) == (3, 1300)
    assert one.load("o-1")[0] == 3
    assert load_state(two_log, ORDER_DECIDER, "o-1") == one.load("o-1")
    with pytest.raises(ConcurrencyError):  # a caller's own expectation is checked as given
        two.handle("o-1", tea, expected_version=2)
    one_log.close()
    two_log.close()


@SETTINGS
@given(
    payloads=st.lists(
        st.tuples(st.text(max_size=20), st.text(max_size=200)), min_size=1, max_size=10
    )
)
def test_payloads_round_trip_through_the_log(payloads: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = open_order_log(Path(tmp), clock=ManualClock())
        events = [
            NewEvent("CustomerNoteAdded", {"author": a, "note": n}, metadata={"k": n})
            for a, n in payloads
        ]
        log.append("o-1", [created(), *events[: len(events) // 2]])
        log.seal()
        log.append("o-1", events[len(events) // 2 :])
        back = log.events_at(range(2, log.head() + 1))
        assert [(e.payload, e.metadata) for e in back] == [
            ({"author": a, "note": n}, {"k": n}) for a, n in payloads
        ]
        log.tail.close()
