"""A throwaway PostgreSQL server: initdb, start, stop, restart, on loopback.

Used by the tests (``tests/support/postgres.py``) and by the PostgreSQL benchmark. The
server binaries come from the machine (``/usr/lib/postgresql/*/bin``, else ``PATH``;
``make test`` installs them with ``scripts/ensure-postgres.sh``). ``initdb`` and
``pg_ctl`` refuse to run as root, so as root they run as the ``postgres`` user. It
imports nothing of LedgerLake.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (the newest installed version)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run "
        "'bash scripts/ensure-postgres.sh' (apt-get install postgresql) or put them on PATH"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One server in a temporary directory, reachable at ``127.0.0.1:port`` (trust auth)."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        """A connection URL (no password: the server trusts loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{what} failed ({proc.returncode}): {proc.stderr}{proc.stdout}{log}"
            )

    def init(self) -> None:
        """initdb (as the postgres user when we are root)."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        proc = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self._check(proc, "initdb")

    def start(self) -> None:
        """Start and wait until it accepts connections (its output goes to the log file)."""
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        proc = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
            "start",
        )  # fmt: skip
        self._check(proc, "pg_ctl start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it (``fast``: clients are disconnected, a clean shutdown)."""
        proc = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self._check(proc, "pg_ctl stop")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down for ``down_s``, start again."""
        self.stop()
        time.sleep(down_s)
        self.start()


def start_server() -> PostgresServer:
    """A fresh server, started (the caller stops it and removes ``root``)."""
    root = Path(tempfile.mkdtemp(prefix="ledgerlake-pg-"))
    server = PostgresServer(find_bin_dir(), root, _free_port())
    try:
        server.init()
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def stop_server(server: PostgresServer) -> None:
    """Stop a server ``start_server`` gave (at once) and remove its directory."""
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
