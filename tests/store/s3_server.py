"""A real S3-compatible server for the store's tests: moto's server mode on a free
port of 127.0.0.1, started once per test process (each xdist worker its own) and
stopped at its end (``tests/store/conftest.py``). Every store gets a bucket of its
own. The credentials are moto's dummies, set in this process's environment only
where none are set, so that a store unpickled here resolves them as a worker would.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from store.s3 import S3Store
from store.s3_objects import S3Address, S3Config

REGION = "us-east-1"
_server: list[Any] = []


def endpoint() -> str:
    """The server's URL, started on first use."""
    if not _server:
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request
        server.start()
        _server.append((server, f"http://127.0.0.1:{port}"))
        atexit.register(stop)
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing-secret")
    return str(_server[0][1])


def stop() -> None:
    while _server:
        _server.pop()[0].stop()


def env() -> dict[str, str]:
    """What a process (the CLI) needs to reach the server the standard AWS way."""
    return {"AWS_ENDPOINT_URL": endpoint(), "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": REGION}


def config() -> S3Config:
    return S3Config(endpoint(), REGION, {"aws_access_key_id": "testing",
                                         "aws_secret_access_key": "testing-secret"})


def new_bucket() -> str:
    """A fresh, empty bucket."""
    import boto3

    name = f"t-{uuid.uuid4().hex[:20]}"
    boto3.client("s3", endpoint_url=endpoint(), region_name=REGION,
                 aws_access_key_id="testing",
                 aws_secret_access_key="testing-secret").create_bucket(Bucket=name)
    return name


def new_store(scratch: Path | None = None) -> S3Store:
    """An empty store in a fresh bucket (``scratch`` is unused: the bucket is the
    scratch space)."""
    return S3Store(S3Address(new_bucket(), "store"), config())
