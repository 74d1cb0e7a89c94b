"""What every benchmark module shares: the Result record, timers and machine info."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any


@dataclass(frozen=True, slots=True)
class Result:
    """One measured figure beside the reference it is judged against (same run)."""

    area: str
    name: str
    value: float
    unit: str
    reference_name: str | None = None
    reference_value: float | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """value / reference_value (for latencies: below 1 is faster)."""
        if self.reference_value in (None, 0):
            return None
        assert self.reference_value is not None
        return self.value / self.reference_value

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, ratio included."""
        return {**asdict(self), "ratio": self.ratio}


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) of samples, nearest-rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def median(samples: list[float]) -> float:
    """The median of samples."""
    return statistics.median(samples)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds the elapsed seconds."""
    out: list[float] = []
    start = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - start)


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """The fastest of ``repeats`` timed calls, in seconds (less noise on a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU count, platform, Python and library versions, and a UTC timestamp."""
    dists = [
        "pyarrow",
        "duckdb",
        "polars",
        "numpy",
        "eventsourcing",
        "lancedb",
        "sentence-transformers",
        "torch",
        "dagster",
        "onnxruntime",
        "fastapi",
        "uvicorn",
    ]
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "versions": {d: _version(d) for d in dists},
    }
