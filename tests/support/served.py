"""A small lake with hashing vectors and a projected warehouse, for the server tests."""

from __future__ import annotations

import shutil
from pathlib import Path

SERVED = {"orders": 24, "days": 35, "seed": 7}


def build_served_lake(path: Path, *, vectors: bool = True, warehouse: bool = False) -> Path:
    """Generate a lake; embed it with the 32-d hashing embedder; project the warehouse."""
    from eventlog.generate import generate
    from eventlog.orders.log import open_order_log, reading
    from projections.embeddings import HashingEmbedder
    from projections.vectors import catch_up_vectors

    with open_order_log(path) as log:
        generate(log, **SERVED)
    if vectors:
        catch_up_vectors(path, embedder=HashingEmbedder(32))
    if warehouse:
        from projections import runner

        with reading(path) as log:
            runner.catch_up(log, None, None)
    return path


def copy_lake(template: Path, dest: Path) -> Path:
    """A private copy of a template lake."""
    shutil.copytree(template, dest)
    return dest


class RunningServer:
    """A ``ledgerlake serve`` process on a free loopback port; ``stop()`` ends it."""

    def __init__(self, lake: Path, log_file: Path, *extra: str) -> None:
        import os
        import socket
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("ledgerlake")
        env = {**os.environ, "LANCE_LOG": "error"}
        self._out = log_file.open("w")
        self.process = subprocess.Popen(
            [str(exe), "--lake", str(lake), "serve", "--port", str(self.port), *extra],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until /api/health answers (the model and tables are warm by then)."""
        import time

        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ledgerlake serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"ledgerlake serve did not answer on {self.url}")

    def stop(self) -> None:
        """Terminate the process (kill after 10 s) and close its log."""
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
