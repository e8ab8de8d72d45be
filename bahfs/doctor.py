"""``bahfs doctor``: is this machine ready for a run? One check per line, each
failure with its fix.

The checks: ffmpeg and ffprobe (with their versions); the plan's models, loaded and
hashed as a run loads them; the devices ONNX Runtime and CTranslate2 will use and the
GPUs seen; the whisperX environment; the Prefect API (``PREFECT_API_URL``) reachable
with its auth; a Dask scheduler reachable, with TLS; the store writable under its
access policy; free disk against what extracting the release still needs. A check
is ``needed`` when a run cannot go without it; the others inform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from store.errors import BahfsError

#: frames of the real BAH release (1,427 videos): the disk check's figure before ingest
RELEASE_FRAMES = 916_618


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = True


def check_tools(path: str | None = None) -> list[Check]:
    """ffmpeg and ffprobe on ``path`` (default: the PATH), with their versions."""
    out = []
    for tool in ("ffmpeg", "ffprobe"):
        exe = shutil.which(tool, path=path)
        if exe is None:
            out.append(Check(tool, False, "not found on PATH",
                             "apt-get install ffmpeg (or put ffmpeg on PATH)"))
            continue
        res = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
        first = (res.stdout.splitlines() or ["?"])[0]
        out.append(Check(tool, res.returncode == 0, f"{exe}: {first}",
                         f"{exe} -version fails: reinstall ffmpeg"))
    return out


def _loaded_spec(entry: Any) -> Any:
    """The feature set of a plan entry, its extractor built and loaded (sessions,
    Whisper and encoders made and checked), then closed."""
    extractor = entry.build()
    try:
        extractor.load()
        return extractor.spec()
    finally:
        extractor.close()


def check_plan(plan_file: Path | None) -> tuple[list[Check], list[Any]]:
    """Every feature set of the plan (default: the default extractors) built as a run
    builds it, models loaded and their hashes checked; with the specs built."""
    import extractors as registry
    from extractors.plan import plan_from_names, plan_to_json, read_plan

    try:
        plan = read_plan(plan_file) if plan_file else plan_from_names(
            registry.DEFAULT_EXTRACTORS)
    except BahfsError as exc:
        return [Check("plan", False, exc.message, exc.expected or "fix the plan file")], []
    checks, specs = [], []
    for entry in plan:
        try:
            spec = _loaded_spec(entry)
        except BahfsError as exc:
            checks.append(Check(f"model {entry.name}", False, str(exc),
                                "bash .ci/setup.sh prepares the shipped models "
                                "(docs/models.md)"))
            continue
        specs.append(spec)
        sha = spec.model_sha256[:12] if spec.model_sha256 else "no model"
        checks.append(Check(f"model {entry.name}", True, f"{spec.id} (sha256 {sha})"))
    uses_whisperx = "whisperx" in json.dumps(plan_to_json(plan))
    return [*checks, check_whisperx(uses_whisperx)], specs


def check_whisperx(needed: bool) -> Check:
    from extractors.asr_whisperx import INSTALL_HINT, whisperx_python

    python = whisperx_python()
    found = python.is_file() and any(python.parent.parent.glob(
        "lib/python*/site-packages/whisperx"))
    return Check("whisperX environment", found,
                 str(python) if found else f"no whisperx at {python}", INSTALL_HINT,
                 needed=needed)


def check_devices() -> list[Check]:
    """What ONNX Runtime and CTranslate2 will run on, and the GPUs nvidia-smi lists."""
    import ctranslate2
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    ort = "CUDA" if "CUDAExecutionProvider" in providers else "CPU"
    n_ct2 = ctranslate2.get_cuda_device_count()
    smi = shutil.which("nvidia-smi")
    gpus = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30
                          ).stdout.strip().splitlines() if smi else []
    return [Check("ONNX Runtime", True, f"{ort} ({', '.join(providers)})", needed=False),
            Check("CTranslate2", True, f"{n_ct2} CUDA devices" if n_ct2 else "CPU",
                  needed=False),
            Check("GPUs", True, "; ".join(gpus) or "none seen (nvidia-smi absent or "
                                                  "lists none): CPU runs", needed=False)]


def check_prefect(timeout_s: float = 5.0) -> Check:
    """The Prefect API a run reports to: reachable, and accepting its credentials."""
    import httpx
    from prefect.settings import Settings

    api = Settings().api  # read now: the environment (and profile) a run started here sees
    if not api.url:
        return Check("Prefect API", True, "PREFECT_API_URL not set: `bahfs extract` starts "
                                          "a temporary local server", needed=False)
    key = api.key.get_secret_value() if api.key else None
    auth = api.auth_string.get_secret_value() if api.auth_string else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    basic = tuple(auth.split(":", 1)) if auth and ":" in auth else None
    try:
        res = httpx.get(f"{str(api.url).rstrip('/')}/health", headers=headers,
                        auth=basic, timeout=timeout_s)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return Check("Prefect API", False, f"{api.url} unreachable: {exc}",
                     "start the server (docs/operations.md) or unset PREFECT_API_URL")
    if res.status_code in (401, 403):
        return Check("Prefect API", False, f"{api.url} refuses the credentials "
                                           f"(HTTP {res.status_code})",
                     "set PREFECT_API_AUTH_STRING (user:password) or PREFECT_API_KEY")
    return Check("Prefect API", res.is_success, f"{api.url}: HTTP {res.status_code}"
                 + (", authenticated" if key or auth else ", no auth"),
                 "check the server's log (docs/operations.md)")


def check_dask(address: str | None, timeout_s: float = 5.0) -> Check:
    """The Dask scheduler a run would use: reachable, over TLS when it says tls://."""
    from flows.placement import scheduler_address
    from flows.security import dask_security

    try:
        address = scheduler_address(address)  # --dask-address, else as a run finds it
        if not address:
            return Check("Dask", True, "a local cluster (no --dask-address)", needed=False)
        security = dask_security(address)
        from distributed import Client

        with Client(address, security=security,  # type: ignore[no-untyped-call]
                    timeout=timeout_s) as client:
            workers = len(client.scheduler_info().get("workers", {}))
    except BahfsError as exc:
        return Check("Dask", False, exc.message, exc.expected or "")
    except (OSError, TimeoutError) as exc:
        return Check("Dask", False, f"{address} unreachable: {exc}",
                     "start the scheduler (docs/operations.md, Dask)")
    tls = "TLS" if address.startswith("tls://") else "no TLS: a trusted network only"
    return Check("Dask", True, f"{address}: {workers} workers, {tls}")


def check_store(store: Path) -> Check:
    """``store`` writable by this user under its access policy (nothing is written)."""
    from store.access import BAHFS_ENTRIES, load_policy

    policy = load_policy(store)
    dirs = [store, *(store / n for n in BAHFS_ENTRIES if (store / n).is_dir())]
    blocked = [d for d in dirs if not os.access(d, os.W_OK | os.X_OK)]
    if blocked:
        return Check("store writable", False, f"cannot write {blocked[0]}",
                     "run as the store's owner or a member of its group, or remount "
                     "the store's filesystem read-write")
    if policy.gid is not None and os.geteuid() != 0 and policy.gid not in os.getgroups():
        return Check("store writable", False, f"not a member of group {policy.group}",
                     f"ask to be added to {policy.group} (the store's policy gives it "
                     "every path)")
    return Check("store writable", True, f"{store} (access: {policy.scope})")


def check_disk(store: Path | None, specs: list[Any]) -> Check:
    """Free disk where the store is against what extracting the release still needs:
    the plan's bytes per frame times the frames not yet extracted."""
    from store.tables import read_table_or_empty

    frames = RELEASE_FRAMES
    done = 0
    where = Path.cwd()
    if store is not None:
        where = store
        videos = read_table_or_empty(store, "videos")
        frames = int(videos["n_frames"].sum()) if videos.height else RELEASE_FRAMES
        done = int(read_table_or_empty(store, "extracted")["n_frames"].sum() or 0)
    per_frame = sum(8 + sum(np.dtype(a.dtype).itemsize * int(np.prod(a.shape or (1,)))
                            for a in s.arrays) for s in specs)
    need = max(0, per_frame * frames - done * per_frame // max(len(specs), 1))
    free = shutil.disk_usage(where).free
    said = f"{free / 1e9:.1f} GB free at {where}, {need / 1e9:.1f} GB needed"
    return Check("free disk", free >= need, said + f" ({frames:,} frames, "
                 f"{per_frame:,} bytes a frame)", "free space, or a store on a larger disk")


def run_checks(store: Path | None, plan: Path | None, dask_address: str | None,
               tool_path: str | None = None) -> list[Check]:
    """Every check, in the order they are printed."""
    checks = check_tools(tool_path)
    plan_checks, specs = check_plan(plan)
    checks += plan_checks
    steps: list[Callable[[], list[Check]]] = [
        check_devices, lambda: [check_prefect()], lambda: [check_dask(dask_address)]]
    for step in steps:
        checks += step()
    if store is not None:
        checks.append(check_store(store))
    checks.append(check_disk(store, specs))
    return checks
