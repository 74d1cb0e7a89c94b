"""Where a lake's parts are on an S3-compatible object store, and how to reach it.

``ledgerlake init --parts s3://bucket/prefix`` records the location in ``lake.toml``; the
endpoint and region come from there or from ``AWS_ENDPOINT_URL``/``AWS_REGION``, and the
credentials only from the environment or the AWS SDK's chain, read when the lake is
opened (never written into the lake). This module parses and checks the location and
builds the clients every reader needs from one ``Connection``: pyarrow's S3 filesystem
(the log, DuckDB through Arrow), Polars' and LanceDB's ``storage_options``.
``eventlog.objectstore`` stores the parts there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from eventlog.errors import InvalidInputError, StorageError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._=-]+$")


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    """Where a lake's parts live in object storage, and how to reach the endpoint."""

    url: str  # s3://bucket/prefix (no credentials)
    endpoint: str | None = None  # e.g. http://minio.internal:9000; None: AWS itself
    region: str | None = None

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return parse_parts_url(self.url)[0]

    @property
    def prefix(self) -> str:
        """The key prefix of the lake inside the bucket ('' for the bucket's root)."""
        return parse_parts_url(self.url)[1]

    @property
    def base(self) -> str:
        """``bucket/prefix``: the root path on the filesystem ``filesystem`` gives."""
        return f"{self.bucket}/{self.prefix}".rstrip("/")


def parse_parts_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; anything else is refused, naming why."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidInputError(f"parts location {url!r} must be s3://BUCKET/PREFIX")
    split = urlsplit(url)
    if split.username or split.password or "@" in split.netloc:
        raise InvalidInputError(
            "the parts URL must not hold credentials; give them with AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    if split.query or split.fragment:
        raise InvalidInputError(f"parts location {url!r} must be s3://BUCKET/PREFIX, no query")
    bucket = split.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInputError(
            f"bucket name {bucket!r} is not valid: 3-63 lower-case letters, digits, '.', '-'"
        )
    segments = [s for s in split.path.split("/") if s]
    for seg in segments:
        if seg in (".", "..") or not _PREFIX_PART.match(seg):
            raise InvalidInputError(
                f"prefix segment {seg!r} of {url!r} must be letters, digits, '.', '_', '=', '-'"
            )
    return bucket, "/".join(segments)


def check_endpoint(endpoint: str) -> str:
    """An endpoint URL: http(s)://host[:port], no credentials, no path."""
    split = urlsplit(endpoint)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise InvalidInputError(f"endpoint {endpoint!r} must be http(s)://HOST[:PORT]")
    if split.username or split.password:
        raise InvalidInputError("the endpoint URL must not hold credentials")
    if split.path.strip("/") or split.query:
        raise InvalidInputError(f"endpoint {endpoint!r} must be http(s)://HOST[:PORT], no path")
    return endpoint.rstrip("/")


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything a client needs to reach the bucket (credentials included: never stored)."""

    endpoint: str | None
    region: str | None
    access_key: str | None
    secret_key: str | None
    session_token: str | None


def connection(location: ObjectLocation, env: Mapping[str, str]) -> Connection:
    """The connection settings: the lake's endpoint and region, else the AWS variables;
    credentials from the AWS variables (None: the AWS SDK's own chain)."""
    endpoint = location.endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = location.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    access = env.get("AWS_ACCESS_KEY_ID") or None
    secret = env.get("AWS_SECRET_ACCESS_KEY") or None
    if (access is None) != (secret is None):
        raise InvalidInputError(
            "give both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (the AWS "
            "SDK's own credential chain)"
        )
    return Connection(
        check_endpoint(endpoint) if endpoint else None,
        region,
        access,
        secret,
        env.get("AWS_SESSION_TOKEN") or None,
    )


def filesystem(conn: Connection) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the connection (few retries: a dead store fails fast)."""
    options: dict[str, Any] = {
        "region": conn.region or "us-east-1",
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        "connect_timeout": 5,
        "request_timeout": 60,
    }
    if conn.endpoint:
        split = urlsplit(conn.endpoint)
        options["endpoint_override"] = split.netloc
        options["scheme"] = split.scheme
    if conn.access_key:
        options.update(
            access_key=conn.access_key,
            secret_key=conn.secret_key,
            session_token=conn.session_token,
        )
    return pafs.S3FileSystem(**options)


def _object_store_options(conn: Connection, region: str, endpoint: str) -> dict[str, str]:
    """The options the Rust ``object_store`` readers take (Polars and LanceDB name the
    region and the endpoint differently; the rest is the same)."""
    options = {region: conn.region or "us-east-1"}
    if conn.endpoint:
        options[endpoint] = conn.endpoint
        options["aws_allow_http" if endpoint.startswith("aws_") else "allow_http"] = str(
            conn.endpoint.startswith("http:")
        ).lower()
    if conn.access_key and conn.secret_key:
        options["aws_access_key_id"] = conn.access_key
        options["aws_secret_access_key"] = conn.secret_key
    if conn.session_token:
        options["aws_session_token"] = conn.session_token
    return options


def polars_storage_options(conn: Connection) -> dict[str, str]:
    """``storage_options`` for ``polars.scan_parquet("s3://...")``."""
    return _object_store_options(conn, "aws_region", "aws_endpoint_url")


def lance_storage_options(conn: Connection) -> dict[str, str]:
    """``storage_options`` for ``lancedb.connect("s3://...")``."""
    return _object_store_options(conn, "region", "endpoint")


def storage_error(what: str, exc: BaseException) -> StorageError:
    """An object store that refused or could not be reached, as exit 5 (no credentials)."""
    return StorageError(f"object storage refused to {what}: {exc}")
