"""The bucket under an S3 store: its address, its configuration, and the few object
operations :class:`store.s3.S3Store` is built on (botocore, through boto3).

Configuration is the standard AWS one, read once where an ``s3://bucket/prefix``
address becomes a store (:meth:`S3Config.resolve`): ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` for an S3-compatible server (``http://`` allowed as given),
``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (else the profile's region, else
``us-east-1``), and credentials by botocore's own chain: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and the shared
``~/.aws`` files, then the host's role. The configuration passes explicitly from
there on. Credentials are never in a repr, a log line, an error or a pickle: a
pickled :class:`Bucket` carries the address, endpoint and region only, and the
process that unpickles it resolves its own credentials (a Dask worker needs them
in its environment, files or role, as any AWS client does).

The client is remade in a forked child (botocore keeps its connections per
process); a Rust client (obstore, icechunk) cannot be, which is why this is botocore
(``docs/store.md``, the S3 backend).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from store.errors import NotFoundError, ObjectStoreError, StoreError

SCHEME = "s3://"
#: parallel requests of one upload, copy or delete
_THREADS = 8
#: error codes of a conditional write that lost its race (not a failure)
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "412")
#: error codes of a server that refuses this client: every request would fail alike
_REFUSED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
            "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem")
#: this process's clients by configuration (a client costs ~0.1 CPU-second to make)
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def is_s3(location: object) -> bool:
    """Whether ``location`` names a bucket: ``s3://...`` (or a path that was one,
    ``Path("s3://b/p")`` being ``s3:/b/p``)."""
    text = str(location)
    return text.startswith(SCHEME) or (not isinstance(location, str)
                                       and text.startswith("s3:/"))


@dataclass(frozen=True)
class S3Address:
    """``s3://bucket/prefix``: a bucket and the key prefix of one store in it."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, location: object) -> S3Address:
        text = str(location)
        rest = text[len(SCHEME):] if text.startswith(SCHEME) else text[len("s3:/"):]
        bucket, _, prefix = rest.partition("/")
        if len(bucket) < 3 or not all(c.isalnum() or c in ".-" for c in bucket):
            raise StoreError(f"{text!r} does not name a bucket",
                             expected="s3://BUCKET/PREFIX (a bucket name of 3+ characters)")
        return cls(bucket, prefix.strip("/"))

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class S3Config:
    """Endpoint, region and (secret, never shown) credentials of one bucket."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None) -> S3Config:
        """The configuration from ``env`` (default: this process's environment) and
        botocore's credential chain: the one place it is read."""
        import boto3

        env = os.environ if env is None else env
        session = boto3.session.Session()
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
        secret = {} if frozen is None else {
            "aws_access_key_id": frozen.access_key,
            "aws_secret_access_key": frozen.secret_key,
            **({"aws_session_token": frozen.token} if frozen.token else {})}
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
                  or session.region_name or "us-east-1")
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        return cls(endpoint, region, secret)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Bucket:
    """Object operations on the keys of one store (relative to its prefix)."""

    def __init__(self, address: S3Address, config: S3Config) -> None:
        self.address, self.config = address, config
        self._client_pid: tuple[Any, int] | None = None
        #: requests this object made in this process, by operation (``get_object``...)
        self.counts: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Bucket({str(self.address)!r}, endpoint={self.config.endpoint_url!r})"

    def __getstate__(self) -> dict[str, Any]:  # no credentials in a pickle
        return {"address": self.address, "endpoint_url": self.config.endpoint_url,
                "region": self.config.region}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # arriving in another process is a boundary: its own credentials
        credentials = S3Config.resolve().credentials
        Bucket.__init__(self, state["address"],
                        S3Config(state["endpoint_url"], state["region"], credentials))

    @property
    def client(self) -> Any:
        """A botocore S3 client of this process for this endpoint, region and
        credentials: made once per process (remade after a fork), shared by every
        bucket object that has the same configuration."""
        made = self._client_pid
        if made is not None and made[1] == os.getpid():
            return made[0]
        with _CLIENTS_LOCK:
            key = (os.getpid(), self.config.endpoint_url, self.config.region,
                   tuple(sorted(self.config.credentials.items())))
            client = _CLIENTS.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                client = boto3.session.Session().client(
                    "s3", endpoint_url=self.config.endpoint_url,
                    region_name=self.config.region,
                    config=Config(max_pool_connections=2 * _THREADS,
                                  retries={"max_attempts": 3, "mode": "standard"}),
                    **self.config.credentials)
                _CLIENTS.clear()  # another process's clients, or another configuration's
                _CLIENTS[key] = client
            self._client_pid = (client, os.getpid())
            return client

    def _failed(self, exc: Exception, key: str) -> Exception:
        """What a failed request on ``key`` is: an absent object or bucket
        (NotFoundError); a server that cannot be reached or refuses the request
        (ObjectStoreError: the machine's, every later request would meet it); anything
        else as raised."""
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                return NotFoundError(f"no object {key!r} in {self.address}", path=key)
            if code == "NoSuchBucket":
                return NotFoundError(f"no bucket {self.address.bucket!r}",
                                     expected="an existing bucket")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _REFUSED or status >= 500:
                return ObjectStoreError(
                    f"object store refused the request: {code or status}",
                    path=str(self.address),
                    expected="credentials the bucket accepts (the standard AWS "
                             "variables, files or role) and a server that answers")
        elif isinstance(exc, BotoCoreError):
            return ObjectStoreError(f"object store unreachable: {type(exc).__name__}",
                                    path=str(self.address),
                                    expected="the S3 server running and reachable "
                                             "(AWS_ENDPOINT_URL), then run again")
        return exc

    def _call(self, op: str, key: str, **kwargs: Any) -> Any:
        """``client.<op>`` on ``key``, its failures as :meth:`_failed` says."""
        self.counts[op] += 1
        try:
            return getattr(self.client, op)(Bucket=self.address.bucket,
                                            Key=self.address.key(key), **kwargs)
        except Exception as exc:
            if (err := self._failed(exc, key)) is exc:
                raise
            raise err from exc

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        body: bytes = self._call("get_object", key)["Body"].read()
        return body

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of ``key`` (``stop > start``)."""
        body: bytes = self._call("get_object", key,
                                 Range=f"bytes={start}-{stop - 1}")["Body"].read()
        return body

    def download(self, key: str, path: Path) -> int:
        """Write the object at ``key`` to the new file ``path`` (streamed, one GET);
        its size in bytes."""
        from botocore.exceptions import BotoCoreError

        body = self._call("get_object", key)["Body"]
        size = 0
        try:
            with open(path, "xb") as fh:
                for block in body.iter_chunks(1 << 20):
                    fh.write(block)
                    size += len(block)
        except BotoCoreError as exc:
            raise ObjectStoreError(f"object store unreachable: {type(exc).__name__}",
                                   path=str(self.address),
                                   expected="the S3 server running and reachable "
                                            "(AWS_ENDPOINT_URL), then run again") from exc
        return size

    def upload(self, key: str, path: Path) -> None:
        """Put the file at ``path`` as the object ``key``, streamed from disk (one PUT)."""
        with open(path, "rb") as fh:
            self._call("put_object", key, Body=fh)

    def head(self, key: str) -> dict[str, Any] | None:
        """``{"size", "etag", "modified", "now"}`` of ``key``; None when absent.
        ``modified`` is the server's ``Last-Modified`` and ``now`` the server's
        ``Date`` of the same response (this host's clock where the server sends
        none), both in whole seconds: their difference is the object's age by the
        server's clock alone."""
        try:
            r = self._call("head_object", key)
        except NotFoundError:
            return None
        date = r.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        try:
            now = parsedate_to_datetime(date).timestamp() if date else time.time()
        except (TypeError, ValueError):
            now = time.time()
        return {"size": int(r["ContentLength"]), "etag": r["ETag"],
                "modified": r["LastModified"].timestamp(), "now": now}

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix`` (a folder: ends with ``/``)."""
        cut = len(self.address.key(prefix))
        return [(prefix + o["Key"][cut:], int(o["Size"]))
                for page in self._pages(prefix, recursive=True)
                for o in page.get("Contents", [])]

    def dirs(self, prefix: str) -> list[str]:
        """The names one level below ``prefix`` (``a/`` -> ``["b", "c"]``), sorted."""
        cut = len(self.address.key(prefix))
        return sorted(p["Prefix"][cut:].rstrip("/")
                      for page in self._pages(prefix, recursive=False)
                      for p in page.get("CommonPrefixes", []))

    def _pages(self, prefix: str, *, recursive: bool) -> list[dict[str, Any]]:
        args: dict[str, Any] = {"Bucket": self.address.bucket,
                                "Prefix": self.address.key(prefix)}
        if not recursive:
            args["Delimiter"] = "/"
        self.counts["list_objects_v2"] += 1
        try:
            return list(self.client.get_paginator("list_objects_v2").paginate(**args))
        except Exception as exc:
            if (err := self._failed(exc, prefix)) is exc:
                raise
            raise err from exc

    def holds_objects(self, prefix: str = "") -> bool:
        """Whether any object is under ``prefix`` (a folder, ``.../``; default: the
        store's), in one request."""
        try:
            r = self.client.list_objects_v2(Bucket=self.address.bucket, MaxKeys=1,
                                            Prefix=self.address.key(prefix))
        except Exception as exc:
            if (err := self._failed(exc, prefix)) is exc:
                raise
            raise err from exc
        return bool(r.get("Contents"))

    # -- writes ------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> str:
        etag: str = self._call("put_object", key, Body=data)["ETag"]
        return etag

    def _put_if(self, key: str, data: bytes, **cond: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            etag: str = self._call("put_object", key, Body=data, **cond)["ETag"]
        except NotFoundError:  # If-Match on an object removed meanwhile
            return None
        except ClientError as exc:
            if _code(exc) in _LOST_RACE:
                return None
            raise
        return etag

    def put_new(self, key: str, data: bytes) -> str | None:
        """Put ``key`` only where it is absent (``If-None-Match: *``): its ETag, or None."""
        return self._put_if(key, data, IfNoneMatch="*")

    def put_match(self, key: str, data: bytes, etag: str) -> str | None:
        """Replace ``key`` only while its ETag is ``etag`` (``If-Match``): the new ETag,
        or None when another writer replaced or removed it first."""
        return self._put_if(key, data, IfMatch=etag)

    def put_many(self, items: list[tuple[str, bytes]],
                 before: Callable[[], None] | None = None) -> None:
        """Put every (key, data); ``before`` runs ahead of each put (a check that
        may raise to stop the rest)."""
        def one(kv: tuple[str, bytes]) -> None:
            if before is not None:
                before()
            self.put(*kv)

        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(one, items))

    def copy(self, src: str, dst: str) -> None:
        source = {"Bucket": self.address.bucket, "Key": self.address.key(src)}
        self._call("copy_object", dst, CopySource=source)

    def copy_many(self, pairs: list[tuple[str, str]]) -> None:
        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(lambda sd: self.copy(*sd), pairs))

    def delete(self, key: str) -> None:
        self._call("delete_object", key)

    def delete_match(self, key: str, etag: str) -> bool:
        """Delete ``key`` only while its ETag is ``etag`` (``If-Match``); whether it
        was deleted (False: another writer replaced or removed it first)."""
        from botocore.exceptions import ClientError

        try:
            self._call("delete_object", key, IfMatch=etag)
        except NotFoundError:
            return False
        except ClientError as exc:
            if _code(exc) in _LOST_RACE:
                return False
            raise
        return True

    def delete_many(self, keys: list[str]) -> None:
        """Delete ``keys`` (absent ones are no error), 1,000 per request."""
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self.address.key(k)} for k in keys[i:i + 1000]]
            try:
                r = self.client.delete_objects(Bucket=self.address.bucket,
                                               Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:
                if (err := self._failed(exc, keys[i])) is exc:
                    raise
                raise err from exc
            if r.get("Errors"):
                raise StoreError(f"{len(r['Errors'])} objects not deleted from "
                                 f"{self.address}: {r['Errors'][0].get('Code')}")

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a folder, ``.../``); how many."""
        keys = [k for k, _ in self.listing(prefix)]
        self.delete_many(keys)
        return len(keys)
