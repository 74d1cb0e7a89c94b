"""Run the installed ``ledgerlake`` as a user would: stdout on a pseudo-terminal, or piped."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Run:
    """What the command printed on the terminal (stdout), on stderr, and its exit code."""

    code: int
    terminal: str
    stderr: str


def ledgerlake() -> str:
    """The console script installed beside the test's Python."""
    exe = shutil.which("ledgerlake", path=str(Path(sys.executable).parent))
    assert exe, "the ledgerlake console script is not installed"
    return exe


def in_terminal(*args: str, columns: int = 120, timeout: float = 120.0) -> Run:
    """Run ``ledgerlake ARGS`` with stdout on a pseudo-terminal ``columns`` wide.

    stderr goes to a pipe, so what the terminal shows is stdout alone; ANSI codes are
    stripped from it.
    """
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [ledgerlake(), *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    _, err = proc.communicate(timeout=timeout)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return Run(proc.returncode, ANSI.sub("", text), err.decode("utf-8", "replace"))


def piped(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``ledgerlake ARGS`` with stdout and stderr into pipes."""
    return subprocess.run(
        [ledgerlake(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
