"""A throwaway S3-compatible server (moto) on loopback, for the tests and the benchmarks.

``start_s3()`` runs ``moto.server`` in a subprocess (its own interpreter: it does not
compete with the caller for the GIL) and ``stop_s3()`` kills it. ``StoppableS3`` puts the
server behind a TCP gate that can be closed (every connection cut) and opened again on
the same port while the server keeps its objects: the "object store went away in the
middle of a seal" drills use it. It imports nothing of LedgerLake.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
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
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
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


class StoppableS3:
    """A server behind a loopback TCP gate: ``stop()`` closes the gate and cuts every open
    connection (clients see the store go away), ``start()`` opens it again on the same
    port; the objects survive because the server itself keeps running."""

    def __init__(self) -> None:
        self.backend = start_s3()
        self.server = S3Server(free_port())
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> S3Server:
        """Open the gate (again) on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.server.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self.server

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the gate was closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.backend.port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Close the gate: new connections are refused, open ones are cut."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        """Stop the gate and the server behind it."""
        self.stop()
        stop_s3(self.backend)
