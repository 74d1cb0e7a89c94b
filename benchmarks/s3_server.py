"""A throwaway S3-compatible server (moto) on loopback, for the tests and the benchmarks.

``start_s3()`` runs ``moto.server`` in a subprocess (its own interpreter: it does not
compete with the caller for the GIL) and ``stop_s3()`` kills it. ``InProcessS3`` runs the
same server in a thread of the caller and can be stopped and started again on the same
port *keeping its objects* (moto keeps them in the process's memory): the "object store
went away in the middle of a seal" drills use it. It imports nothing of LedgerLake.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ACCESS_KEY = "ledgerlake-test"
SECRET_KEY = "ledgerlake-test-secret"
REGION = "us-east-1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the S3 server did not listen on port {port}") from None
            time.sleep(0.05)


@dataclass
class S3Server:
    """An S3-compatible endpoint on ``127.0.0.1:port`` with fixed test credentials."""

    port: int
    process: subprocess.Popen[bytes] | None = None
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The endpoint URL (plain HTTP on loopback)."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS environment variables a client of this server needs."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name unless given); returns its name."""
        name = name or f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under a prefix (for the tests' assertions)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def start_s3(port: int | None = None) -> S3Server:
    """Start ``moto.server`` in a subprocess on loopback and wait until it listens."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
    except BaseException:
        proc.kill()
        raise
    return S3Server(port, proc)


def stop_s3(server: S3Server) -> None:
    """Stop a server ``start_s3`` gave (its objects are gone with it)."""
    if server.process is not None:
        server.process.kill()
        server.process.wait(timeout=30)


class InProcessS3:
    """moto's server in a thread: ``stop()`` refuses every request, ``start()`` serves
    again on the same port with the same objects."""

    def __init__(self) -> None:
        self.server = S3Server(free_port())
        self._moto: Any = None

    def start(self) -> S3Server:
        """Serve (again) on the same port."""
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.server.port, verbose=False)
        self._moto.start()
        _wait_for(self.server.port)
        return self.server

    def stop(self) -> None:
        """Stop serving: connections are refused until ``start()``."""
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
