"""A seeded generator of realistic order histories, driven through the real command handlers.

``generate(lake, orders=N, days=D, seed=S)`` simulates a web shop for D days: customers
(many of them returning) fill and shrink carts, apply discount codes, fail and retry
payments, change addresses, get parcels shipped and delivered (sometimes late, sometimes
damaged), cancel, get refunds and write notes in varied natural language. Every event
goes through ``decide`` via ``handle_many`` (group commit), so the log holds only what
the Order rules accept.

Determinism: the log is driven by a simulated clock and a seeded event-id factory, and
every order draws from its own ``random.Random(f"{seed}/{index}")``, so the same
arguments on an empty lake give the same log, byte for byte (event ids, positions,
``recorded_at`` included). Command ids ``gen-<seed>-<order>-<step>`` make a repeated run
on the same lake append nothing.

Back-dating: some events are recorded later than they occurred (a carrier's delivery
scan uploaded days later, a phone call typed up the next morning, a payment webhook
that arrived late). Within one order the recording times never overtake each other, so
every stream's ``occurred_at`` is non-decreasing with its version: the fold in
``(occurred_at, version)`` order equals the fold in version order. See docs/cli.md.
"""

from __future__ import annotations

import heapq
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.envelope import utc
from eventlog.errors import InvalidInputError
from eventlog.handler import CommandHandler
from eventlog.log import EventLog
from eventlog.orders.decider import ORDER_DECIDER
from eventlog.orders.log import open_order_log
from eventlog.orders.plans import Plan, plan_order
from eventlog.orders.world import CATALOGUE, make_customers, note_text, price_in, weighted

__all__ = [
    "CATALOGUE",
    "DEFAULT_START",
    "GenerateSummary",
    "generate",
    "note_text",
    "price_in",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
MAX_ORDERS = 5_000_000
MAX_DAYS = 3_660
COMMIT_WINDOW_S = 3600.0  # commands due within one simulated hour share one commit
MAX_BATCH = 2000  # ... unless that many are waiting already
BACK_DATED_AFTER = timedelta(hours=2)  # recorded this much after occurring counts as back-dated

ProgressCallback = Callable[[float, int], None]
"""Called with (fraction of simulated time done, events written so far)."""


# --- the simulation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerateSummary:
    """What ``generate`` wrote: counts, time range, head, events by type."""

    seed: int
    orders: int
    customers: int
    days: int
    start: datetime
    events: int
    head: int
    rejected: int
    back_dated: int
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    first_recorded_at: datetime | None
    last_recorded_at: datetime | None
    by_type: dict[str, int]
    seconds: float
    rejections: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Events written per wall-clock second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""

        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "seed": self.seed,
            "orders": self.orders,
            "customers": self.customers,
            "days": self.days,
            "start": self.start.isoformat(),
            "events": self.events,
            "head": self.head,
            "rejected": self.rejected,
            "back_dated": self.back_dated,
            "first_occurred_at": iso(self.first_occurred_at),
            "last_occurred_at": iso(self.last_occurred_at),
            "first_recorded_at": iso(self.first_recorded_at),
            "last_recorded_at": iso(self.last_recorded_at),
            "by_type": dict(sorted(self.by_type.items())),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "rejections": self.rejections,
        }


class _SimClock:
    """The simulated wall clock the log reads when it records a commit."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _check_args(orders: object, days: object, seed: object, start: datetime | None) -> datetime:
    for name, value, low, high in (("orders", orders, 1, MAX_ORDERS), ("days", days, 1, MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInputError(
                f"{name} must be an integer from {low} to {high}, got {value!r}"
            )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"seed must be an integer, got {seed!r}")
    return DEFAULT_START if start is None else utc(start)


def generate(
    log_or_lake: EventLog | str | Path,
    *,
    orders: int,
    days: int,
    seed: int,
    start: datetime | None = None,
    progress: bool | ProgressCallback = False,
) -> GenerateSummary:
    """Simulate ``days`` days of a shop with ``orders`` orders and append them through ``handle_many``.

    Orders are created over the whole period (more during the day) and live on for
    days; the simulation stops at ``start + days``, so late orders are still in flight.
    ``log_or_lake`` is an open EventLog (sealed at the end, left open) or a lake path
    (opened, and closed at the end, which seals it).
    """
    begin = _check_args(orders, days, seed, start)
    own = not isinstance(log_or_lake, EventLog)
    log = open_order_log(log_or_lake) if own else log_or_lake  # type: ignore[arg-type]
    assert isinstance(log, EventLog)
    saved = (log.clock, log.id_factory, log.seal_max_age, log.seal_max_events)
    clock = _SimClock(begin)
    id_rng = random.Random(seed)
    log.clock = clock
    log.id_factory = lambda: str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
    # Seal by size only (and at the end): simulated days pass in seconds of wall time.
    log.seal_max_age, log.seal_max_events = timedelta(days=MAX_DAYS + 1), 100000
    t0 = time.perf_counter()
    try:
        head_before = log.head()
        rejections, customers = _simulate(
            log, clock, orders=orders, days=days, seed=seed, start=begin, progress=progress
        )
        log.seal()
        return _summarize(log, head_before, seed, orders, customers, days, begin, rejections, t0)
    finally:
        log.clock, log.id_factory, log.seal_max_age, log.seal_max_events = saved
        if own:
            log.close()


def _simulate(
    log: EventLog,
    clock: _SimClock,
    *,
    orders: int,
    days: int,
    seed: int,
    start: datetime,
    progress: bool | ProgressCallback,
) -> tuple[list[str], int]:
    rng = random.Random(f"{seed}/world")
    customers = make_customers(rng, max(5, int(orders * 0.6)))
    hours = [
        (h, w)
        for h, w in enumerate(
            (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 10, 11, 10, 8, 5, 2)
        )
    ]
    created = sorted(
        rng.randrange(days) * 86400.0 + weighted(rng, hours) * 3600.0 + rng.random() * 3600.0
        for _ in range(orders)
    )
    who = [
        customers[int(len(customers) * rng.random() ** 2)] for _ in range(orders)
    ]  # regulars order more
    order_ids: list[str] = []
    seen: set[str] = set()
    for _ in range(orders):
        oid = f"ord-{rng.getrandbits(48):012x}"
        while oid in seen:
            oid = f"ord-{rng.getrandbits(48):012x}"
        seen.add(oid)
        order_ids.append(oid)
    end = days * 86400.0
    heap: list[tuple[float, int, int]] = []  # (recorded_s, order index, step)
    plans: dict[int, Plan] = {}
    batch: list[tuple[int, int]] = []
    rejections: list[str] = []
    written = 0
    nxt = 0
    batch_start = 0.0
    report = _progress_reporter(progress, end)
    handler = CommandHandler(log, ORDER_DECIDER)

    def flush() -> None:
        nonlocal written
        if not batch:
            return
        steps = [plans[i].steps[s] for i, s in batch]
        clock.now = start + timedelta(seconds=round(max(r for _, r, _ in steps), 3))
        results = handler.handle_many(
            [(plans[i].order_id, cmd) for (i, _), (_, _, cmd) in zip(batch, steps, strict=True)],
            command_ids=[f"gen-{seed}-{plans[i].order_id}-{s}" for i, s in batch],
            metadata={"source": "generator"},
            read_back=False,
        )
        for res in results:
            if res.error is not None:
                rejections.append(str(res.error))
            elif res.append is not None and not res.duplicate:
                written += res.append.last_position - res.append.first_position + 1
        for i, s in batch:
            if s == len(plans[i].steps) - 1:
                del plans[i]
        batch.clear()
        report((clock.now - start).total_seconds(), written)

    try:
        while True:
            upcoming = heap[0][0] if heap else float("inf")
            while nxt < orders and created[nxt] <= upcoming:
                plan = plan_order(nxt, seed, order_ids[nxt], created[nxt], who[nxt], start)
                plans[nxt] = plan
                heapq.heappush(heap, (plan.steps[0][1], nxt, 0))
                upcoming = heap[0][0]
                nxt += 1
            if not heap:
                break
            recorded, i, s = heapq.heappop(heap)
            if recorded >= end:
                break  # the period is over; whatever is still planned never happened
            if batch and (recorded - batch_start > COMMIT_WINDOW_S or len(batch) >= MAX_BATCH):
                flush()
            if not batch:
                batch_start = recorded
            batch.append((i, s))
            if s + 1 < len(plans[i].steps):
                heapq.heappush(heap, (plans[i].steps[s + 1][1], i, s + 1))
        flush()
    finally:
        report(None, written)
    return rejections, len({c.customer_id for c in who})


def _progress_reporter(
    progress: bool | ProgressCallback, end: float
) -> Callable[[float | None, int], None]:
    if callable(progress):
        callback = progress
        return lambda done, n: callback(1.0 if done is None else min(1.0, done / end), n)
    if not progress:
        return lambda done, n: None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("simulating days", total=end, events=0)
    bar.start()

    def report(done: float | None, n: int) -> None:
        if done is None:
            bar.update(task, completed=end, events=n)
            bar.stop()
            return
        bar.update(
            task,
            completed=min(done, end),
            events=n,
            description=f"simulating day {min(int(done // 86400) + 1, int(end // 86400))}/{int(end // 86400)}",
        )

    return report


def _summarize(
    log: EventLog,
    head_before: int,
    seed: int,
    orders: int,
    customers: int,
    days: int,
    start: datetime,
    rejections: list[str],
    t0: float,
) -> GenerateSummary:
    head = log.head()
    table = log.read_all(after=head_before, columns=["event_type", "occurred_at", "recorded_at"])
    seconds = time.perf_counter() - t0
    by_type: Counter[str] = Counter()
    if table.num_rows:
        counts = table.column("event_type").cast(pa.string()).value_counts()
        by_type.update({str(v["values"]): int(v["counts"]) for v in counts.to_pylist()})
    occ, rec = table.column("occurred_at"), table.column("recorded_at")
    lag = pc.subtract(rec.cast(pa.int64()), occ.cast(pa.int64()))
    back = int(pc.sum(pc.greater(lag, BACK_DATED_AFTER // timedelta(microseconds=1))).as_py() or 0)
    return GenerateSummary(
        seed=seed,
        orders=orders,
        customers=customers,
        days=days,
        start=start,
        events=table.num_rows,
        head=head,
        rejected=len(rejections),
        back_dated=back,
        first_occurred_at=pc.min(occ).as_py(),
        last_occurred_at=pc.max(occ).as_py(),
        first_recorded_at=pc.min(rec).as_py(),
        last_recorded_at=pc.max(rec).as_py(),
        by_type=dict(by_type),
        seconds=seconds,
        rejections=rejections[:10],
    )
