"""Derived projections rebuilt side by side: one warehouse cursor per lane, in threads.

A rebuild of every projection spends most of its time in DuckDB storing rows, and some
of those stores use one core: ``orders`` (one row group), the rollups, the commits. Run
one after another, the second core idles through them; run side by side, one lane
stores ``orders`` and the rollups while another stores every state of every order.

Each projection still builds in a transaction of its own, as it does one at a time:
readers see its old table until its commit, then its new one. A projection starts once
those it depends on (among the ones being run) have committed, so the rollups read the
new ``orders``. Every lane is a cursor of the warehouse connection (DuckDB's
connections to one database share it, each with its own transaction), set to UTC as
the connection is. DuckDB runs a statement without holding Python's interpreter lock,
so the lanes' statements run at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from projections.projection import Projection

T = TypeVar("T")

MAX_LANES = 4
"""At most this many projections build at once (the warehouse has seven, and the two
largest dominate)."""


def lanes_for(cores: int | None = None) -> int:
    """How many lanes a run gets: one per core, at most ``MAX_LANES`` (1: one at a time)."""
    return max(1, min(MAX_LANES, cores if cores is not None else os.cpu_count() or 1))


def _lane(con: Any) -> Any:
    """A cursor of ``con`` for one lane: its own transaction, the connection's time zone."""
    cursor = con.cursor()
    cursor.execute("SET TimeZone = 'UTC'")  # a session setting: a cursor starts without it
    return cursor


def side_by_side(
    con: Any,
    projections: Sequence[Projection],
    work: Callable[[Any, Projection], T],
    lanes: int,
) -> list[T]:
    """``work(cursor, projection)`` for every projection, in up to ``lanes`` at once.

    A projection starts once every projection it depends on among ``projections`` is
    done; the ready ones start in the order given. Results come back in that order too.
    With one lane, ``work`` runs on ``con`` itself, one projection after another.

    The first failure stops new starts; the running ones finish (or, when this thread
    is interrupted, are interrupted), and then the failure is raised.
    """
    if lanes <= 1 or len(projections) <= 1:
        return [work(con, p) for p in projections]
    names = {p.name for p in projections}
    pending = list(projections)
    done: dict[str, T] = {}
    idle = [_lane(con) for _ in range(min(lanes, len(projections)))]
    running: dict[Future[T], tuple[Projection, Any]] = {}
    failure: BaseException | None = None

    def ready(p: Projection) -> bool:
        return all(d in done or d not in names for d in p.depends_on)

    try:
        with ThreadPoolExecutor(max_workers=len(idle)) as pool:
            try:
                while pending or running:
                    while failure is None and idle:
                        p = next((p for p in pending if ready(p)), None)
                        if p is None:
                            break
                        pending.remove(p)
                        lane = idle.pop()
                        running[pool.submit(work, lane, p)] = (p, lane)
                    if not running:
                        break  # a failure left the rest unstarted
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        p, lane = running.pop(future)
                        idle.append(lane)
                        error = future.exception()
                        if error is not None:
                            failure = failure or error
                        else:
                            done[p.name] = future.result()
            except BaseException:  # interrupted: stop what runs, then let it unwind
                for _, lane in running.values():
                    lane.interrupt()
                raise
    finally:
        for lane in idle:
            lane.close()
        for _, lane in running.values():
            lane.close()
    if failure is not None:
        raise failure
    return [done[p.name] for p in projections]
