"""Engines for the store on object storage, measured against one moto server on
127.0.0.1 (``docs/store.md``, the S3 backend).

    .venv/bin/pip install obstore s3fs icechunk   # the candidates bahfs does not use
    .venv/bin/python -m benchmarks.s3_engine [--videos 24] [--windows 400]

Each candidate writes the same N small video groups (three float16 arrays of a few
hundred frames each, one uncompressed chunk per array, as ``store.writer`` makes
them) into its own bucket, then reads the same random 32-frame windows back:

* ``obstore+zarr``: zarr v3's ``zarr.storage.ObjectStore`` over ``obstore``; writes
  and reads through zarr-python;
* ``fsspec+zarr``: zarr's ``FsspecStore`` over ``s3fs``; writes and reads through
  zarr-python;
* ``icechunk``: one commit per video on the ``main`` branch (a video atomic), reads
  through zarr-python on a read-only session;
* ``boto3+marker``: what ``store.s3`` does: the group built locally by zarr-python,
  its objects uploaded, the group's ``zarr.json`` put last with ``If-None-Match``;
  windows read as one ranged GET each.

It also checks each client in a child forked from a process that has used it (the
store's tests fork writers; DataLoader workers are forked): ``ok`` when the child's
one read answers within 10 s. Ratios are against the first candidate, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

KEY, SECRET, REGION = "bench", "bench-secret", "us-east-1"
ARRAYS = {"face": 128, "audio": 64, "words": 96}
WINDOW = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def videos(n: int, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        frames = int(rng.integers(200, 400))
        out.append((f"p{i:03d}/v{i:03d}", {a: rng.standard_normal((frames, d)).astype(
            np.float16) for a, d in ARRAYS.items()}))
    return out


def build_group(store: Any, path: str, arrays: dict[str, np.ndarray]) -> None:
    group = zarr.create_group(store, path=path, zarr_format=3,
                              attributes={"n_frames": len(arrays["face"])})
    for name, data in arrays.items():
        group.create_array(name, data=data, chunks=data.shape, compressors=None)


def boto3_client(url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=url, aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, region_name=REGION)


class Candidate:
    name = ""

    def __init__(self, url: str, bucket: str) -> None:
        self.url, self.bucket = url, bucket

    def write(self, path: str, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def reader(self, path: str, name: str) -> Callable[[int, int], np.ndarray]:
        raise NotImplementedError

    def fork_probe(self) -> Callable[[], object]:
        raise NotImplementedError


class ZarrCandidate(Candidate):
    """A candidate that writes and reads through zarr-python over ``self.zstore``."""

    zstore: Any

    def write(self, path: str, arrays: dict[str, np.ndarray]) -> None:
        build_group(self.zstore, path, arrays)

    def reader(self, path: str, name: str) -> Callable[[int, int], np.ndarray]:
        arr = zarr.open_array(self.zstore, path=f"{path}/{name}", mode="r")
        return lambda a, b: np.asarray(arr[a:b])


class ObstoreZarr(ZarrCandidate):
    name = "obstore+zarr"

    def __init__(self, url: str, bucket: str) -> None:
        super().__init__(url, bucket)
        from obstore.store import S3Store

        self.s3 = S3Store(bucket, endpoint=url, access_key_id=KEY, secret_access_key=SECRET,
                          region=REGION, client_options={"allow_http": True})
        self.zstore = zarr.storage.ObjectStore(self.s3)

    def fork_probe(self) -> Callable[[], object]:
        import obstore

        return lambda: obstore.get(self.s3, "zarr.json").bytes()


class FsspecZarr(ZarrCandidate):
    name = "fsspec+zarr"

    def __init__(self, url: str, bucket: str) -> None:
        super().__init__(url, bucket)
        self.opts = {"key": KEY, "secret": SECRET, "endpoint_url": url,
                     "client_kwargs": {"region_name": REGION}}
        self.zstore = zarr.storage.FsspecStore.from_url(f"s3://{bucket}",
                                                        storage_options=self.opts)

    def fork_probe(self) -> Callable[[], object]:
        import s3fs

        return lambda: s3fs.S3FileSystem(**self.opts).cat(f"{self.bucket}/zarr.json")


class Icechunk(Candidate):
    name = "icechunk"

    def __init__(self, url: str, bucket: str) -> None:
        super().__init__(url, bucket)
        import icechunk

        storage = icechunk.s3_storage(bucket=bucket, prefix="repo", endpoint_url=url,
                                      allow_http=True, access_key_id=KEY,
                                      secret_access_key=SECRET, region=REGION,
                                      force_path_style=True)
        self.repo = icechunk.Repository.create(storage)
        session = self.repo.writable_session("main")
        zarr.create_group(session.store, zarr_format=3)
        session.commit("root")

    def write(self, path: str, arrays: dict[str, np.ndarray]) -> None:
        session = self.repo.writable_session("main")
        build_group(session.store, path, arrays)
        session.commit(f"publish {path}")

    def reader(self, path: str, name: str) -> Callable[[int, int], np.ndarray]:
        if not hasattr(self, "_read"):
            self._read = self.repo.readonly_session(branch="main").store
        arr = zarr.open_array(self._read, path=f"{path}/{name}", mode="r")
        return lambda a, b: np.asarray(arr[a:b])

    def fork_probe(self) -> Callable[[], object]:
        return lambda: list(self.repo.list_branches())


class Boto3Marker(Candidate):
    name = "boto3+marker"

    def __init__(self, url: str, bucket: str) -> None:
        super().__init__(url, bucket)
        self.s3 = boto3_client(url)
        self.tmp = Path(tempfile.mkdtemp(prefix="s3-engine-"))

    def write(self, path: str, arrays: dict[str, np.ndarray]) -> None:
        local = self.tmp / path
        build_group(zarr.storage.LocalStore(self.tmp), path, arrays)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        marker = local / "zarr.json"
        for f in [*(f for f in files if f != marker), marker]:  # the marker last
            extra = {"IfNoneMatch": "*"} if f == marker else {}
            self.s3.put_object(Bucket=self.bucket, Key=f"{path}/{f.relative_to(local)}",
                               Body=f.read_bytes(), **extra)

    def reader(self, path: str, name: str) -> Callable[[int, int], np.ndarray]:
        import json

        meta = json.loads(self.s3.get_object(Bucket=self.bucket,
                                             Key=f"{path}/{name}/zarr.json")["Body"].read())
        shape, row = meta["shape"], int(np.prod(meta["shape"][1:])) * 2

        def read(a: int, b: int) -> np.ndarray:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"{path}/{name}/c/0/0",
                                      Range=f"bytes={a * row}-{b * row - 1}")["Body"].read()
            return np.frombuffer(body, np.float16).reshape(b - a, *shape[1:])

        return read

    def fork_probe(self) -> Callable[[], object]:
        return lambda: boto3_client(self.url).list_objects_v2(Bucket=self.bucket, MaxKeys=1)


CANDIDATES: list[type[Candidate]] = [ObstoreZarr, FsspecZarr, Icechunk, Boto3Marker]


def fork_ok(probe: Callable[[], object]) -> str:
    """Whether ``probe`` answers in a forked child within 10 s."""
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)
        try:
            probe()
            os._exit(0)
        except BaseException:  # any failure is the answer
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "hangs"
    return "ok" if os.WEXITSTATUS(status) == 0 else "fails"


def run(cand: Candidate, data: list[tuple[str, dict[str, np.ndarray]]], n_windows: int
        ) -> dict[str, Any]:
    t0 = time.perf_counter()
    for path, arrays in data:
        cand.write(path, arrays)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    picks = [(int(rng.integers(len(data))), str(rng.choice(list(ARRAYS))))
             for _ in range(n_windows)]
    readers: dict[tuple[int, str], Callable[[int, int], np.ndarray]] = {}
    t0 = time.perf_counter()
    for v, name in picks:
        path, arrays = data[v]
        if (v, name) not in readers:
            readers[(v, name)] = cand.reader(path, name)
        start = int(rng.integers(0, len(arrays[name]) - WINDOW))
        got = readers[(v, name)](start, start + WINDOW)
        if not np.array_equal(got, arrays[name][start:start + WINDOW]):
            raise SystemExit(f"{cand.name}: a window read back wrong")
    read_s = time.perf_counter() - t0
    return {"write_s": write_s, "windows_per_s": n_windows / read_s,
            "fork": fork_ok(cand.fork_probe())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--windows", type=int, default=400)
    args = ap.parse_args()
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    data = videos(args.videos)
    results = []
    try:
        for i, kind in enumerate(CANDIDATES):
            bucket = f"bench-{i}"
            boto3_client(url).create_bucket(Bucket=bucket)
            results.append((kind.name, run(kind(url, bucket), data, args.windows)))
            asyncio.set_event_loop(asyncio.new_event_loop())  # fsspec leaves its own
    finally:
        server.stop()
    first = results[0][1]
    print(f"{args.videos} videos x {len(ARRAYS)} float16 arrays, {args.windows} windows "
          f"of {WINDOW} frames, moto on 127.0.0.1")
    print("| engine | write (s) | write vs first | windows/s | read vs first | "
          "forked child |")
    for name, r in results:
        print(f"| {name} | {r['write_s']:.2f} | {r['write_s'] / first['write_s']:.2f}x | "
              f"{r['windows_per_s']:.0f} | {r['windows_per_s'] / first['windows_per_s']:.2f}x"
              f" | {r['fork']} |")


if __name__ == "__main__":
    main()
