"""Where things live in a store directory, and small filesystem helpers.

```
STORE/
  tables/                       Parquet tables (docs/tables.md)
  features.zarr/                Zarr v3 hierarchy (docs/store.md)
    <featureset id>/            attrs: extractor, config, model_sha256, arrays, created
      <participant id>/
        <video id>/             attrs: n_frames, written_at, ...; published atomically
          timestamps            (n_frames,) float64
          <array>               (n_frames, *shape), one uncompressed chunk
  .staging/                     videos being written (invisible to readers)
  .trash/                       removed trees waiting to be deleted
  .locks/                       flock files: the table lock, one per video being extracted
  access.json                   who may read the store (store/access.py); absent: the default
  sources/<participant>/<video><ext>   in a bucket only: the input videos ingest uploaded
```
Every path is created with the store's access policy (:mod:`store.access`), whatever
the umask: the writers here take it as ``access``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.access import AccessPolicy, load_policy
from store.errors import CorruptError, NotFoundError, StoreError
from store.fault_points import fault_point

FEATURES = "features.zarr"
STAGING = ".staging"
TRASH = ".trash"
#: in a bucket: the input videos ingest uploads for workers that cannot see the release
SOURCES = "sources"
LAYOUT_VERSION = 1
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def features_root(store: Path) -> Path:
    return Path(store) / FEATURES


def check_name(kind: str, name: str) -> str:
    """Ids become directory names: refuse anything that could escape or collide."""
    if not _SAFE.match(name) or ".." in name:
        raise StoreError(f"{kind} {name!r} is not a safe store name",
                         expected="letters, digits, '_', '-', '.'; no '..'")
    return name


def source_key(participant_id: str, video_id: str, suffix: str) -> str:
    """The key, relative to a bucket store, of a video's uploaded input file
    (``suffix``: the recorded file's extension, ``.mp4``)."""
    return f"{SOURCES}/{check_name('participant', participant_id)}/" \
           f"{check_name('video', video_id)}{suffix}"


def video_dir(store: Path, fs_id: str, participant_id: str, video_id: str) -> Path:
    return (features_root(store) / check_name("feature set", fs_id)
            / check_name("participant", participant_id) / check_name("video", video_id))


def is_published(store: Path, fs_id: str, participant_id: str, video_id: str) -> bool:
    """Whether the video's group in feature set ``fs_id`` is published."""
    return (video_dir(store, fs_id, participant_id, video_id) / "zarr.json").is_file()


def atomic_write(path: Path, write: Callable[[str], object], *, access: AccessPolicy
                 ) -> None:
    """``write(tmp)`` a temporary file beside ``path``, give it the mode of ``access``,
    sync it, rename it over ``path``: readers see the old file or the new one, never
    half of one. The temporary file is named after its writer (host, pid); temporary
    files of ``path`` left by dead writers (a crash between write and rename) are
    removed first. Missing folders are made with the policy's mode."""
    access.make_dirs(path.parent)
    prefix = f".{path.name}."
    for old in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        if _writer_gone(old.name[len(prefix):-len(".tmp")], old):
            old.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{_writer_tag()}-", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        access.apply(tmp, is_dir=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        fault_point(f"replace{path.suffix}")  # crash tests: written, not yet in place
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(path: Path) -> None:
    """fsync every file under ``path``, then its folders bottom-up: a rename that then
    publishes ``path`` can never outrun its data (after a power loss a published video
    has all its chunks on disk)."""
    for folder, _, files in os.walk(path, topdown=False):
        for name in files:
            _fsync(os.path.join(folder, name))
        _fsync(folder)


def sync_dir(path: Path) -> None:
    """fsync a folder, so that a rename inside it is on disk."""
    _fsync(str(path))


def atomic_write_text(path: Path, text: str, *, access: AccessPolicy) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                 access=access)


def ensure_group(path: Path, attrs: dict[str, Any] | None = None, *,
                 access: AccessPolicy) -> None:
    """Create a Zarr v3 group at ``path`` if absent (atomic; safe under concurrency)."""
    meta = path / "zarr.json"
    if meta.exists():
        return
    atomic_write_text(meta, json.dumps({"zarr_format": 3, "node_type": "group",
                                        "attributes": attrs or {}}, indent=2), access=access)


def refuse_zarr_v2(path: Path) -> None:
    """A clear error where ``path`` holds a Zarr v2 node (the store is Zarr v3)."""
    for name in (".zgroup", ".zarray"):
        if (path / name).is_file():
            raise CorruptError("a Zarr v2 node; the store is Zarr v3", path=path / name,
                               expected="zarr.json (rewrite it with zarr-python 3, "
                                        "zarr_format=3)")


def read_attrs(path: Path) -> dict[str, Any]:
    """Attributes of the Zarr node at ``path`` (group or array)."""
    meta = path / "zarr.json"
    try:
        attrs: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))["attributes"]
    except FileNotFoundError as exc:
        refuse_zarr_v2(path)
        raise NotFoundError("missing Zarr metadata", path=meta) from exc
    except (ValueError, KeyError) as exc:
        raise CorruptError(f"unreadable Zarr metadata: {exc}", path=meta) from exc
    return attrs


def _writer_tag() -> str:
    """``<host>-<pid>``: names what this process writes, so that a later process can
    tell a dead writer's leftovers (:func:`_writer_gone`)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def staging_dir(store: Path, access: AccessPolicy) -> Path:
    """A fresh private staging directory for this process."""
    path = Path(store) / STAGING / f"{_writer_tag()}-{uuid.uuid4().hex[:8]}"
    access.make_dirs(path.parent)
    path.mkdir()
    access.apply(path, is_dir=True)
    return path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: a staging dir of another host untouched this long belongs to a dead writer (a
#: video is written in seconds to minutes)
STALE_REMOTE_S = 6 * 3600.0


def _last_touched(path: Path) -> float:
    if not path.is_dir():
        return path.stat().st_mtime
    return max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])


def _writer_gone(tag: str, path: Path, remote_after_s: float = STALE_REMOTE_S) -> bool:
    """Whether the writer of ``path``, named ``<host>-<pid>-<random>`` by ``tag``, is
    dead: on this host when its process is gone, on another host (whose processes
    cannot be seen) when ``path`` did not change for ``remote_after_s`` seconds.
    Untagged names and this process's own leftovers count as alive."""
    host, _, rest = tag.rpartition("-")[0].rpartition("-")
    try:
        pid = int(rest)
    except ValueError:
        return False
    try:
        if host == socket.gethostname():
            return pid != os.getpid() and not pid_alive(pid)
        return time.time() - _last_touched(path) > remote_after_s
    except FileNotFoundError:  # removed meanwhile by its writer or another cleaner
        return False


def clean_stale_staging(store: Path, remote_after_s: float = STALE_REMOTE_S) -> list[Path]:
    """Remove staging dirs of dead writers; return them. On this host a writer is dead
    when its process is; on another host sharing the store (whose processes cannot be
    seen) when nothing in its staging dir changed for ``remote_after_s`` seconds."""
    root = Path(store) / STAGING
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for d in root.iterdir():
        if _writer_gone(d.name, d, remote_after_s):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def remove_tree(store: Path, path: Path) -> None:
    """Make ``path`` vanish at once (rename into .trash), then delete it."""
    if not path.exists():
        return
    trash = load_policy(store).make_dirs(Path(store) / TRASH)
    target = trash / f"{uuid.uuid4().hex}"
    os.rename(path, target)
    shutil.rmtree(target, ignore_errors=True)
