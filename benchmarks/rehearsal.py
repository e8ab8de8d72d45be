"""The full-count rehearsal: a release the size of BAH's (300 participants, 1,427
videos) through the Prefect deployment, with broken videos and a full disk.

What it does (needs root: the store lives on a tmpfs it mounts, so that the disk
can really fill up):

1. builds a release with the real count: annotations from the sample generator
   (300 participants, trimmed to 1,427 videos), each video a short real H.264 +
   AAC clip (64x48, 2 fps, silence-free sine) with the annotated frame count; about
   5 % of them broken: zero bytes and truncated (quarantined at ingest), a clip of
   another length than its labels (quarantined at ingest: labels do not fit), and
   random bytes over the middle of the stream (probes fine, quarantined at
   extraction);
2. starts a Prefect server, ``prefect deploy`` (prefect.yaml) and runs
   ``prefect deployment run extract/extract`` with a process worker: the flow
   ingests and extracts (``--extractors logmel``, a local Dask cluster of 2
   workers); part-way (once 40 % of the videos are published) the store's
   filesystem is filled up: the run must stop within seconds with one message
   saying the disk is full and how many videos remain, nothing quarantined for it;
3. frees the space and runs the deployment again: it must finish the rest;
4. checks that every video is extracted or quarantined with a reason, that no
   video is lost, and runs ``bahfs verify``.

Figures: the per-video orchestration overhead (the completing run's wall time
times its workers, per video, minus what ``extract_all`` alone takes on the same
clips in this process: the baseline), peak RSS of the flow process (which also runs
the Dask scheduler of its LocalCluster), of the Dask worker processes and of the
Prefect server, and how long the full disk took to stop the run.

    sudo .venv/bin/python -m benchmarks.rehearsal [--out /tmp/rehearsal] [--videos 1427]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bahfs.sample.generate import SampleConfig, plan_dataset
from bahfs.sample.release_files import video_path, write_release_files
from benchmarks.ingest_full import place_clips
from flows.local import LocalPrefect
from store.release import codebook as cb

FPS = 2.0
WORKERS = 2
PARTICIPANTS = 300


def _clip(path: Path, n_frames: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size=64x48:rate={FPS}", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=16000", "-frames:v", str(n_frames),
                    "-t", f"{n_frames / FPS:.3f}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "4", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(path)], check=True)


def _corrupt_middle(path: Path, n: int = 600) -> None:
    data = bytearray(path.read_bytes())
    mid = (data.find(b"mdat") + len(data)) // 2
    data[mid:mid + n] = random.Random(0).randbytes(min(n, len(data) - mid))
    path.unlink()
    path.write_bytes(bytes(data))


def build(out: Path, n_videos: int, participants: int) -> dict[str, list[str]]:
    """The release under ``out``; the broken videos' relative paths by kind."""
    cfg = SampleConfig(participants=participants, seed=0, max_questions=6, max_seconds=14.0,
                       fps=FPS)
    meta, splits, jobs = plan_dataset(cfg)
    rng = random.Random(0)
    while len(jobs) > n_videos:  # trim to the real count, never a participant's last
        counts: dict[str, int] = defaultdict(int)
        for j in jobs:
            counts[j.pid] += 1
        i = rng.randrange(len(jobs))
        if counts[jobs[i].pid] > 1:
            jobs.pop(i)
    write_release_files(out, meta, splits, jobs, cfg.variant)
    rels = [video_path(j, cfg.variant) for j in jobs]
    by_count: dict[int, list[Path]] = defaultdict(list)
    for job, rel in zip(jobs, rels, strict=True):
        by_count[job.plan.n_frames].append(out / rel)
    clips = out / ".clips"
    place_clips(by_count, clips, _clip, shutil.copyfile)  # copies: some are broken below
    broken = rng.sample(range(len(jobs)), round(0.05 * len(jobs)))
    kinds: dict[str, list[str]] = defaultdict(list)
    counts_sorted = sorted(by_count)
    for k, i in enumerate(broken):
        path, n = out / rels[i], jobs[i].plan.n_frames
        kind = ("zero bytes", "truncated", "labels", "corrupt")[k % 4]
        if kind == "zero bytes":
            path.write_bytes(b"")
        elif kind == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        elif kind == "labels":
            other = next(c for c in counts_sorted if c != n)
            shutil.copyfile(clips / f"{other}.mp4", path)
        else:
            _corrupt_middle(path)
        kinds[kind].append(rels[i])
    (out / "broken.json").write_text(json.dumps(kinds, indent=1))
    return kinds


class Sampler:
    """Peak RSS (MB) of a process tree, by role: the Prefect worker (the root), the
    flow process (its child; it runs the Dask scheduler too) and the Dask processes
    below it (the largest one)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.wait(0.5):
            procs: dict[int, tuple[int, float]] = {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    text = stat.read_text()
                    fields = text[text.rindex(")") + 2:].split()
                    procs[int(stat.parent.name)] = (int(fields[1]), int(fields[21]) * page)
                except (OSError, ValueError, IndexError):
                    continue
            depth = {self.root: 0}
            changed = True
            while changed:
                changed = False
                for pid, (ppid, _) in procs.items():
                    if pid not in depth and ppid in depth:
                        depth[pid] = depth[ppid] + 1
                        changed = True
            for pid, d in depth.items():
                if pid not in procs:
                    continue
                role = ("prefect worker" if d == 0 else "flow + Dask scheduler" if d == 1
                        else "Dask processes (largest)")
                self.peak[role] = max(self.peak[role], procs[pid][1])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return dict(self.peak)


def _published(store: Path) -> int:
    root = store / "features.zarr"
    return sum(1 for _ in root.glob("*/*/*/zarr.json")) if root.is_dir() else 0


def _fill(mount: Path) -> Path:
    filler = mount / "filler"
    with open(filler, "wb") as fh:
        block = b"\0" * (1 << 20)
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    try:  # and the last bytes
        with open(mount / "filler2", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass
    return filler


def _log_times(text: str, marker: str) -> list[float]:
    """Seconds since midnight (the log's clock) of the lines holding ``marker``."""
    out = []
    for line in text.splitlines():
        if marker in line and line[:2].isdigit() and line[2] == ":":
            h, m, sec = line[:12].split(":")
            out.append(int(h) * 3600 + int(m) * 60 + float(sec))
    return out


def _clock() -> float:
    now = time.localtime()
    return now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec + time.time() % 1


def run_deployment(prefect: LocalPrefect, params: dict[str, Any], store: Path,
                   fill_at: int | None, mount: Path) -> dict[str, Any]:
    """One ``prefect deployment run extract/extract`` executed by a one-shot worker:
    its wall time, the extraction phase's (from the flow's log), peak memory, and
    when the run said it stopped after the disk was filled."""
    log = prefect.home / "worker.log"
    offset = log.stat().st_size if log.exists() else 0
    prefect.run("extract/extract", params, watch=False)
    t0 = time.perf_counter()
    worker = prefect.start_worker(run_once=True)
    sampler = Sampler(worker.pid)
    filled_at, filled_clock = None, 0.0
    while worker.poll() is None:
        if fill_at is not None and filled_at is None and _published(store) >= fill_at:
            _fill(mount)
            filled_at, filled_clock = time.perf_counter(), _clock()
            print(f"  disk filled after {_published(store)} videos published", flush=True)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    tasks = _log_times("\n".join(ln for ln in text.splitlines()
                                  if "Task run 'extract-" in ln),
                       "Finished in state Completed()")
    stop = _log_times(text, "stopping the run")
    return {"wall_s": wall, "peak_mb": sampler.stop(), "rc": worker.returncode,
            "tasks": len(tasks),
            # first task done to last task done: the cluster's start-up and the run's
            # ingest left out
            "task_span_s": (max(tasks) - min(tasks)) if len(tasks) > 1 else None,
            "stop_logged_after_fill_s": (stop[0] - filled_clock) if stop and filled_at
            else None,
            "process_gone_after_fill_s": None if filled_at is None else
            time.perf_counter() - filled_at,
            "message": next((ln.strip() for ln in text.splitlines()
                             if "run stopped:" in ln), "")}


def baseline(release: Path, rels: list[str]) -> float:
    """Seconds ``extract_all`` (decode + logmel, no orchestration, no store) takes per
    video, over ``rels``."""
    from extractors.context import build_extractors
    from extractors.pipeline import extract_all
    from extractors.plan import plan_from_names
    from extractors.runtime import DEFAULT_RUNTIME

    extractors = list(build_extractors(plan_from_names(["logmel"]), DEFAULT_RUNTIME))
    extract_all(release / rels[0], extractors)  # warm
    times = []
    for rel in rels:
        t0 = time.perf_counter()
        extract_all(release / rel, extractors)
        times.append(time.perf_counter() - t0)
    return statistics.mean(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/rehearsal"))
    ap.add_argument("--videos", type=int, default=1427)
    ap.add_argument("--participants", type=int, default=PARTICIPANTS)
    ap.add_argument("--store-mb", type=int, default=400)
    args = ap.parse_args()
    out = args.out.resolve()
    if out.exists():
        subprocess.run(["umount", str(out / "storefs")], capture_output=True)
        shutil.rmtree(out)
    release, mount = out / "inbox" / "release", out / "storefs"
    mount.mkdir(parents=True)
    t0 = time.perf_counter()
    broken = build(release, args.videos, args.participants)
    n_files = sum(1 for _ in (release / cb.VIDEOS_DIR).rglob("*.mp4"))
    print(f"release: {n_files} videos of {args.participants} participants, broken: "
          + ", ".join(f"{k} {len(v)}" for k, v in broken.items())
          + f" ({time.perf_counter() - t0:.0f} s to build)", flush=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.store_mb}m", "tmpfs",
                    str(mount)], check=True)
    store = mount / "store"
    bad = {r for v in broken.values() for r in v}
    good = sorted({str(p.relative_to(release)) for p in (release / cb.VIDEOS_DIR).rglob(
        "*.mp4")} - bad)
    per_video = baseline(release, good[:60])
    print(f"baseline: extract_all (decode + logmel) {per_video * 1000:.0f} ms per video",
          flush=True)
    params = {"source": str(release.parent), "store": str(store), "extractors": ["logmel"],
              "dask_workers": WORKERS}
    try:
        with LocalPrefect(out / "prefect", env={"BAHFS_THREADS": "1"}) as prefect:
            prefect.deploy("extract")
            server_pid = prefect._procs[0][0].pid
            print("run 1 (the disk fills part-way)", flush=True)
            first = run_deployment(prefect, params, store, int(0.4 * n_files), mount)
            print("run 1: " + json.dumps(first), flush=True)
            published_1 = _published(store)
            for f in ("filler", "filler2"):
                (mount / f).unlink(missing_ok=True)
            print("run 2 (space freed)", flush=True)
            second = run_deployment(prefect, params, store, None, mount)
            print("run 2: " + json.dumps(second), flush=True)
            server_rss = int(Path(f"/proc/{server_pid}/status").read_text().split(
                "VmHWM:")[1].split()[0]) / 1024 if Path(f"/proc/{server_pid}").exists() \
                else float("nan")
            runs = json.loads(prefect.cli("flow-run", "ls", "--output", "json"))
        report = check(store, release, broken)
        verify = subprocess.run([str(Path(sys.executable).with_name("bahfs")), "verify",
                                 str(store)], capture_output=True, text=True)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=False)
    states = sorted(r["state"]["type"] for r in runs)
    phase = second["task_span_s"] or second["wall_s"]
    worker_s = phase * WORKERS / max(1, second["tasks"] - 1)
    overhead = worker_s - per_video
    print(json.dumps({"run1": first, "run2": second, "flow_states": states,
                      "published_before_stop": published_1, **report,
                      "server_peak_mb": server_rss}, indent=1))
    print(f"run 1: the run logged its stop {first['stop_logged_after_fill_s']} s after the "
          f"disk filled, its processes were gone after {first['process_gone_after_fill_s']} "
          f"s; message: {first['message'][-600:]}")
    print(f"run 2: {second['wall_s']:.0f} s in all; {second['tasks']} video tasks done "
          f"over {phase:.0f} s (first to last); per video {worker_s * 1000:.0f} ms "
          f"of worker time vs {per_video * 1000:.0f} ms for extract_all alone: "
          f"orchestration overhead {overhead * 1000:.0f} ms per video "
          f"({(overhead + per_video) / per_video:.1f}x the baseline)")
    print(f"verify: exit {verify.returncode}: {verify.stdout.strip()[:300]} "
          f"{verify.stderr.strip()[:300]}")


def check(store: Path, release: Path, broken: dict[str, list[str]]) -> dict[str, Any]:
    """Every consented video extracted or quarantined with a reason; no video lost."""
    import polars as pl

    from store.tables import read_table

    videos = read_table(store, "videos")
    q = read_table(store, "quarantine")
    ext = read_table(store, "extracted")
    excluded = read_table(store, "exclusions")
    consented_files = int(videos.height + q.height)
    done = set(ext["video_id"].to_list())
    quarantined = set(q["video_id"].to_list())
    lost = [v for v in videos["video_id"].to_list() if v not in done and v not in quarantined]
    by_path = dict(q.select("path", "stage").iter_rows())
    expected_stage = {"zero bytes": "ingest", "truncated": "ingest", "labels": "ingest",
                      "corrupt": "extract"}
    kinds_ok = {k: sum(1 for r in v if by_path.get(r) == expected_stage[k])
                for k, v in broken.items()}
    return {"consented_videos": consented_files, "extracted": len(done),
            "quarantined": len(quarantined),
            "quarantined_by_stage": dict(q.group_by("stage").len().iter_rows()),
            "quarantined_without_reason": int(q.filter(pl.col("reason") == "").height),
            "broken_quarantined_at_the_expected_stage": kinds_ok,
            "excluded_participants": excluded.height,
            "neither_extracted_nor_quarantined": len(lost)}


if __name__ == "__main__":
    main()
