"""Start and stop `ledgerlake ui` for tests, and talk to its GraphQL API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# every asset the main job materializes (the log itself is an observed source asset)
ASSETS = frozenset(
    {
        "order_events",
        "orders",
        "order_lines",
        "payments",
        "daily_sales",
        "customers",
        "order_states",
        "event_narratives",
        "order_stories",
        "training_set",
    }
)

LEDGERLAKE = Path(sys.executable).with_name("ledgerlake")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DagsterUI:
    """A running `ledgerlake ui` process (in its own process group) and its address."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    lake: Path
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        """The UI's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL query against the webserver; raise on GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            doc = json.loads(response.read())
        if doc.get("errors"):
            raise AssertionError(f"GraphQL errors: {doc['errors']}")
        return dict(doc["data"])

    def log_text(self) -> str:
        """What the UI process printed so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT the process group (what Ctrl-C does), then kill it if it lingers."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                return self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        # dagster dev's children share the group: make sure none is left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def session_processes(session: int) -> list[int]:
    """The ids of the live (not zombie) processes of a session (the UI and its children)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == session:  # state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


WORKSPACE_READY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name locationOrLoadError { __typename } } } } }
"""


def start_ui(
    lake: Path,
    log_path: Path,
    *,
    embedder: str = "hashing",
    port: int | None = None,
    timeout: float = 180.0,
    like_a_background_job: bool = False,
) -> DagsterUI:
    """Start `ledgerlake --lake LAKE ui` and wait until its code location has loaded.

    ``like_a_background_job`` starts it the way a shell script's ``ledgerlake ui &`` does:
    with SIGINT (and SIGQUIT) ignored.
    """
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = log_path.open("wb")
    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)
    process = subprocess.Popen(
        [str(LEDGERLAKE), "--lake", str(lake), "ui", "--port", str(port), "--embedder", embedder],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_ignore_interrupts if like_a_background_job else None,
    )
    ui = DagsterUI(process, port, log_path, lake)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"ledgerlake ui exited early:\n{ui.log_text()}")
            try:
                data = ui.graphql(WORKSPACE_READY)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(1)
                continue
            entries = data["workspaceOrError"].get("locationEntries", [])
            kinds = [(e.get("locationOrLoadError") or {}).get("__typename") for e in entries]
            if "PythonError" in kinds:
                raise AssertionError(f"code location failed to load: {data}\n{ui.log_text()}")
            if kinds and all(k == "RepositoryLocation" for k in kinds):
                return ui
            time.sleep(1)
        raise AssertionError(f"ledgerlake ui not ready after {timeout}s:\n{ui.log_text()}")
    except BaseException:
        ui.stop()
        raise


RUNS = """
query Runs($limit: Int) { runsOrError(limit: $limit) { __typename ... on Runs { results {
  runId status jobName tags { key value } } } } }
"""


def runs(ui: DagsterUI, limit: int = 50) -> list[dict[str, Any]]:
    """The newest runs of the instance (id, status, job name, tags)."""
    data = ui.graphql(RUNS, {"limit": limit})
    return list(data["runsOrError"]["results"])


def wait_for_run(ui: DagsterUI, run_id: str, timeout: float = 300.0) -> str:
    """Wait until a run finishes; return its final status."""
    query = "query R($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ui.graphql(query, {"id": run_id})["runOrError"].get("status")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return str(status)
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s:\n{ui.log_text()[-4000:]}")


MATERIALIZED = """
query { assetNodes { assetKey { path } isObservable isMaterializable
  assetMaterializations(limit: 1) { runId timestamp } } }
"""


def materialized_assets(ui: DagsterUI) -> dict[str, bool]:
    """Each materializable asset of the UI and whether it has a materialization."""
    nodes = ui.graphql(MATERIALIZED)["assetNodes"]
    return {
        "/".join(n["assetKey"]["path"]): bool(n["assetMaterializations"])
        for n in nodes
        if n["isMaterializable"]
    }


RUN_ASSETS = """
query R($id: ID!) { runOrError(runId: $id) { ... on Run {
  assetMaterializations { assetKey { path } } } } }
"""


def run_materialized(ui: DagsterUI, run_id: str) -> set[str]:
    """The assets one run materialized."""
    run = ui.graphql(RUN_ASSETS, {"id": run_id})["runOrError"]
    return {"/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]}
