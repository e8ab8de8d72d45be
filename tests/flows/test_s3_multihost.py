"""The multi-host shape with the store in a bucket, for real: ``bahfs extract`` on a
Dask cluster started here (``dask scheduler`` and ``dask worker`` processes, each in
a working directory and cwd of its own, temporary folder and Prefect home
included), the store ``s3://`` on a moto server in this process on 127.0.0.1. The
flow and the workers share nothing but the bucket: the flow is given the endpoint
(``AWS_ENDPOINT_URL``), the workers only credentials, and each worker reads its
own when it unpickles the store. The workers never read the release: the flow
ingests it from an inbox (uploading its videos into the bucket), and once ingested
the release is moved out of the inbox to a path no one was told, so the path the
videos table records is gone and every video a worker decodes is the copy it
fetched from the bucket. One release, one bucket, one cluster, in order:

1. A worker SIGKILLed mid-publish (``BAHFS_FAULT=rename:1``: the video's objects
   uploaded, its ``zarr.json`` not yet put); the release is moved away; two fresh
   workers take the run over and finish it; ``bahfs verify s3://...`` is clean.
2. The S3 server stopped while a worker uploads a video: the run stops with the
   machine's exit code and message, nothing published or ingested is lost.
3. The server back, a rerun completes, with the same features; verify is clean.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from bahfs.sample.generate import SampleConfig
from flows.local import LocalPrefect, free_port
from store.reader import FeatureReader
from store.s3 import S3Store
from store.s3_objects import S3Address, S3Config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent
BAHFS, DASK = str(BIN / "bahfs"), str(BIN / "dask")
REGION = "us-east-1"
#: dummy credentials moto accepts; the secret must appear in no log, table or output
KEY_ID, SECRET = "s3x-key-id", "s3x-secret-never-logged"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
               "AWS_REGION": REGION}
#: the environment of this run that must not reach a worker (it has its own)
NOT_FOR_WORKERS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "BAHFS_STORE",
                   "BAHFS_DASK_ADDRESS", "BAHFS_FAULT")


class S3Server:
    """moto's server on a port of 127.0.0.1, served from this process: stopped, it
    refuses connections (and answers 503 on those already open); started again on the
    same port, it has its buckets (moto keeps them in this process's memory).
    ``stop_at``: stop while answering the first PUT whose path matches."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = DomainDispatcherApplication(create_backend_app)
        self.stop_at: re.Pattern[str] | None = None
        self.stopped = True
        self._server: BaseWSGIServer | None = None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.stop_at is not None and environ["REQUEST_METHOD"] == "PUT" \
                and self.stop_at.search(environ.get("PATH_INFO", "")):
            self.stop_at = None
            self.stopped = True
            threading.Thread(target=self.stop, daemon=True).start()
        if self.stopped:
            start_response("503 Service Unavailable",
                           [("Content-Length", "0"), ("Connection", "close")])
            return [b""]
        return self.app(environ, start_response)

    def start(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True,
                                   request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()


class Cluster:
    """A Dask scheduler and workers on 127.0.0.1, each a process in a session and a
    working directory of its own (its cwd, ``TMPDIR`` and ``PREFECT_HOME``)."""

    def __init__(self, root: Path, worker_env: dict[str, str]) -> None:
        self.root, self.env = root, worker_env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        folder = self._folder("scheduler")
        info = folder / "scheduler.json"
        self._spawn("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(info)], {})
        deadline = time.monotonic() + 120
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = str(json.loads(info.read_text())["address"])

    def _folder(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True)
        return folder

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        folder = self.root / name
        with open(folder / "log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                args, cwd=folder, env={**self.env, **env}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, name: str, fault: str = "") -> subprocess.Popen[bytes]:
        folder = self._folder(name)
        env = {"TMPDIR": str(folder), "PREFECT_HOME": str(folder / "prefect")}
        self._spawn(name, [DASK, "worker", self.address, "--name", name, "--nthreads", "1",
                           "--no-nanny", "--no-dashboard", "--local-directory", str(folder)],
                    {**env, **({"BAHFS_FAULT": fault} if fault else {})})
        return self.procs[name]

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{(self.root / n / 'log').read_text(errors='replace')}"
                         for n in self.procs)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def release(generated: Callable[[SampleConfig], Path]) -> Path:
    """Two participants, one short video each at 8 fps (shared: read-only)."""
    return generated(SampleConfig(participants=2, seed=5, max_questions=1, max_seconds=14.0,
                                  fps=8.0, workers=2))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


def _bucket(server: S3Server) -> str:
    name = f"bahfs-{os.getpid()}-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id=KEY_ID,
                 aws_secret_access_key=SECRET).create_bucket(Bucket=name)
    return name


def _features(store: S3Store) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    reader = FeatureReader(store)
    return {(fs, vid): reader.video(fs, vid)
            for fs in reader.featuresets() for vid in reader.extracted(fs)}


def _assert_same(got: dict[Any, dict[str, np.ndarray]],
                 want: dict[Any, dict[str, np.ndarray]]) -> None:
    assert got.keys() == want.keys()
    for key, arrays in want.items():
        assert got[key].keys() == arrays.keys()
        for name, arr in arrays.items():
            np.testing.assert_array_equal(got[key][name], arr, err_msg=str(key))


def _held(store: S3Store) -> list[str]:
    """Lock objects someone holds, publish claims and staging entries left."""
    held = [k for k, _ in store.bucket.listing(".locks/")
            if k.startswith(".locks/publish/")
            or json.loads(store.bucket.get(k)).get("owner") is not None]
    return held + store.staging_entries()


def _no_s3_folder(root: Path) -> None:
    assert not [p for p in root.rglob("s3:*")], "a local folder named after the bucket"


def test_extract_into_a_bucket_on_two_dask_workers(
        release: Path, s3: S3Server, prefect_server: LocalPrefect, tmp_path: Path) -> None:
    bucket = _bucket(s3)
    url = f"s3://{bucket}/store"
    base = {k: v for k, v in prefect_server.env.items() if k not in NOT_FOR_WORKERS}
    base.update(CREDENTIALS, BAHFS_THREADS="1", OMP_NUM_THREADS="1")
    cluster = Cluster(tmp_path / "hosts", base)
    flow_dir = tmp_path / "hosts" / "flow"
    flow_dir.mkdir()
    flow_env = {**base, "AWS_ENDPOINT_URL": s3.url, "BAHFS_DASK_ADDRESS": cluster.address,
                "PREFECT_HOME": prefect_server.env["PREFECT_HOME"]}
    inbox, hidden = tmp_path / "inbox", tmp_path / "hidden"
    shutil.copytree(release, inbox / "release")
    extract = [BAHFS, "extract", str(inbox), url, "--extractors", "logmel"]

    def run(timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(extract, cwd=flow_dir, env=flow_env, capture_output=True,
                              text=True, timeout=timeout_s)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([BAHFS, "verify", url], cwd=flow_dir, env=flow_env,
                              capture_output=True, text=True, timeout=120)

    store = S3Store(S3Address(bucket, "store"), S3Config(s3.url, REGION, {
        "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}))
    try:
        # 1. the only worker dies mid-publish; two fresh workers take the run over
        killed = cluster.add_worker("a", fault="rename:1")
        first = subprocess.Popen(extract, cwd=flow_dir, env=flow_env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert killed.wait(timeout=300) == -signal.SIGKILL, cluster.logs()
        assert not store.videos(store.feature_set_ids()[0])  # nothing half published
        recorded = {Path(s) / p for s, p in store.read_table("videos").select(
            "source", "path").iter_rows()}
        (inbox / "release").rename(hidden)  # the inbox empty: no batch to ingest again
        assert recorded and not any(f.exists() for f in recorded)
        assert len(store.bucket.listing("sources/")) == len(recorded)
        cluster.add_worker("b")
        cluster.add_worker("c")
        out, _ = first.communicate(timeout=300)
        assert first.returncode == 0, out + cluster.logs()
        checked = verify()
        assert checked.returncode == 0 and "store is valid" in checked.stdout, \
            checked.stdout + checked.stderr
        assert not _held(store)
        before = _features(store)
        videos = store.read_table("videos")["video_id"].to_list()
        assert videos and sorted(vid for _, vid in before) == sorted(videos)
        ingested = {t: store.read_table(t) for t in ("videos", "participants", "batches")}

        # 2. the server stops while a worker uploads a video's objects
        victim = store.videos(store.feature_set_ids()[0])[0]
        store.unpublish(victim)
        s3.stop_at = re.compile(rf"/{bucket}/store/features\.zarr/.+/{victim.video_id}/.+/")
        stopped = run()
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr + cluster.logs()
        assert "object store" in stopped.stderr and "run stopped" in stopped.stderr, \
            stopped.stderr
        assert s3.stopped and s3.stop_at is None  # it was the upload that met it
        s3.start()
        for name, table in ingested.items():  # nothing lost
            assert store.read_table(name).equals(table), name
        _assert_same(_features(store), {k: v for k, v in before.items()
                                        if k[1] != victim.video_id})
        deadline = time.monotonic() + 60  # the worker's locks, released once it answers
        while _held(store) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _held(store), _held(store)

        # 3. the rerun completes, with the same features
        again = run()
        assert again.returncode == 0, again.stdout + again.stderr + cluster.logs()
        assert "extracted 1 videos" in again.stdout, again.stdout
        checked = verify()
        assert checked.returncode == 0 and "store is valid" in checked.stdout, \
            checked.stdout + checked.stderr
        _assert_same(_features(store), before)
        assert not _held(store)
        assert not list((tmp_path / "hosts").rglob("bahfs-source-*"))  # copies removed
    finally:
        cluster.close()
    for text in (out, stopped.stdout + stopped.stderr, again.stdout + again.stderr,
                 cluster.logs()):
        assert SECRET not in text
    for key in store.keys():
        if key.startswith("tables/"):
            assert SECRET.encode() not in store.read_key(key), key
    _no_s3_folder(tmp_path)
