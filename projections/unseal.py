"""Decrypting sealed parts in worker processes: the CPU-bound half of pinning an encrypted lake.

Opening a personal field is AES-GCM plus a little Python per value, and Python threads
share one interpreter lock: on the embedded lake, a build that decrypts more than
``SPAWN_ROWS`` events starts one worker process per core (at most one per part). Each
is a fresh interpreter (``python -m projections.unseal``; a fork would copy DuckDB's
threads mid-work, and ``multiprocessing``'s spawn would run the caller's script again
where it lacks a ``__main__`` guard), opens the lake read-only itself, and writes the
parts it was given as decrypted Parquet files. The job goes in on stdin and the outcome
comes back on stdout, pickled: both ends are this package, on this machine.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from eventlog.errors import StorageError
from eventlog.log import EventLog
from eventlog.parts import Part
from eventlog.tails.sqlite import SqliteTail

SPAWN_ROWS = 100_000
"""Encrypted parts holding more events than this in all are decrypted in worker processes
(starting one costs about 0.4 s; decrypting 100k events about as much)."""

Writer = Callable[[EventLog, Part, Path], None]


def workers_for(log: EventLog, todo: Sequence[tuple[Part, Path]]) -> int:
    """How many worker processes decrypt ``todo`` (0: this process does, in threads).

    Only for the embedded lake (SQLite tail, local parts), which a worker opens from its
    path alone, and only when there is enough to decrypt to pay for starting them.
    """
    rows = sum(p.last - p.first + 1 for p, _ in todo)
    workers = min(os.cpu_count() or 1, len(todo))
    embedded = log.store.local and isinstance(log.tail, SqliteTail)
    return workers if embedded and workers > 1 and rows > SPAWN_ROWS else 0


def _shares(todo: Sequence[tuple[Part, Path]], workers: int) -> list[list[int]]:
    """Indices into ``todo`` per worker, balanced by events (largest part first)."""
    shares: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(todo)), key=lambda i: todo[i][0].first - todo[i][0].last):
        w = load.index(min(load))
        shares[w].append(i)
        load[w] += todo[i][0].last - todo[i][0].first + 1
    return [s for s in shares if s]


def unseal(
    log: EventLog,
    todo: Sequence[tuple[Part, Path]],
    workers: int,
    write: Writer,
    on_error: Callable[[Part, Path, BaseException], None],
) -> None:
    """Run ``write(log, part, dest)`` for every pair of ``todo`` in ``workers`` processes.

    ``write`` must be a module-level function (it is named to the worker by import
    path). A part that fails is passed to ``on_error`` with its exception, which raises.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs: list[tuple[list[int], subprocess.Popen[bytes], IO[bytes]]] = []
    failure: tuple[int, BaseException] | None = None
    with contextlib.ExitStack() as files:
        try:
            for share in _shares(todo, workers):
                job = {
                    "root": str(log.root),
                    "registry": log.registry,
                    "write": (write.__module__, write.__qualname__),
                    "parts": [(todo[i][0], str(todo[i][1])) for i in share],
                }
                # stderr goes to a file: a worker that writes much there never blocks on
                # a pipe this process is not reading yet
                errors: IO[bytes] = files.enter_context(tempfile.TemporaryFile())
                proc = subprocess.Popen(
                    [sys.executable, "-m", "projections.unseal"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=env,
                )
                procs.append((share, proc, errors))
                assert proc.stdin is not None
                proc.stdin.write(pickle.dumps(job))
                proc.stdin.close()
            for share, proc, errors in procs:
                assert proc.stdout is not None
                out = proc.stdout.read()  # the outcome alone, written as the worker ends
                proc.wait()
                try:
                    outcome = pickle.loads(out)
                except Exception:  # a worker that died says so on stderr
                    errors.seek(0)
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise StorageError(
                        f"a decrypting worker process exited with status {proc.returncode} "
                        f"before it reported: {' / '.join(tail) or 'no message'}"
                    ) from None
                if outcome is not None and failure is None:
                    failure = (share[outcome[0]], outcome[1])
        finally:  # none left running or unreaped when one failed or this was interrupted
            for _, proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
    if failure is not None:
        part, dest = todo[failure[0]]
        on_error(part, dest, failure[1])


def _work(job: dict[str, Any]) -> tuple[int, BaseException] | None:
    import importlib

    module, name = job["write"]
    write: Writer = getattr(importlib.import_module(module), name)
    log = EventLog.open_read_only(job["root"], registry=job["registry"])
    try:
        for i, (part, dest) in enumerate(job["parts"]):
            try:
                write(log, part, Path(dest))
            except Exception as exc:  # reported to the parent, which raises
                return i, exc
    finally:
        log.close()
    return None


def _report(outcome: tuple[int, BaseException] | None) -> bytes:
    try:
        return pickle.dumps(outcome)
    except Exception:  # one that does not pickle: its words do
        assert outcome is not None
        return pickle.dumps(
            (outcome[0], StorageError(f"{type(outcome[1]).__name__}: {outcome[1]}"))
        )


if __name__ == "__main__":
    sys.stdout.buffer.write(_report(_work(pickle.load(sys.stdin.buffer))))
