"""Which folders are stores: every command but ``ingest`` and ``extract`` works only on one,
and those two write only into a store or a new, empty folder. An ``s3://`` address is
refused by each function here (they are about folders; :func:`store.local.open_store` opens
a bucket). A store is a directory holding at least one of what bahfs puts there:
``tables/``, ``features.zarr/``, ``access.json`` (written by ``bahfs access`` before the
first ingest) or ``.locks/`` (taken by the first ingest before it writes a table). A release
folder, a source checkout or a typo is refused with what was found there and what to do.
"""

from __future__ import annotations

from pathlib import Path

from store.access import ACCESS_FILE
from store.errors import NotFoundError, StoreError
from store.layout import FEATURES
from store.locks import LOCKS
from store.s3_objects import is_s3
from store.tables import TABLES_DIR

#: what bahfs writes at the top of a store; any one of them makes a folder a store
MARKERS = (TABLES_DIR, FEATURES, ACCESS_FILE, LOCKS)
#: files at the top of a BAH release (any variant): a folder holding one is a release
_RELEASE_FILES = ("meta_data.yml", "video_annotation_transcript.yaml",
                  "video_annotation.yaml", "annotation.yml", "Videos")


def is_store(path: Path) -> bool:
    """True when ``path`` is a directory bahfs wrote a store into."""
    path = Path(path)
    return path.is_dir() and any((path / m).exists() for m in MARKERS)


def _looks_like_release(path: Path) -> bool:
    return any((path / name).exists() for name in _RELEASE_FILES)


def local_folder(path: Path | str) -> Path:
    """``path`` as a folder; an ``s3://`` address is refused here, where a folder is
    asked for (``Path`` would make it a local folder named ``s3:``)."""
    if is_s3(path):
        raise StoreError(f"{path} is a bucket; this works on a store in a local folder",
                         expected="a local folder (`bahfs copy s3://... DIR` makes a "
                                  "local copy of a store in a bucket)")
    return Path(path)


def existing_store(path: Path) -> Path:
    """``path`` when it is a store; else a NotFoundError (nothing there) or a
    StoreError saying what it is instead."""
    path = local_folder(path)
    if not path.exists():
        raise NotFoundError(f"no such directory: {path}",
                            expected="a store made by `bahfs ingest DATASET STORE`")
    if not path.is_dir():
        raise StoreError(f"{path} is a file, not a store",
                         expected="the folder `bahfs ingest DATASET STORE` wrote")
    if is_store(path):
        return path
    if _looks_like_release(path):
        raise StoreError(f"{path} is a BAH release, not a store",
                         expected=f"a store: `bahfs ingest {path} STORE` makes one from it")
    raise StoreError(f"{path} is not a bahfs store (no {', '.join(MARKERS)})",
                     expected="the folder `bahfs ingest DATASET STORE` wrote")


def store_for_withdrawal(path: Path, *, not_arrived: bool) -> Path:
    """The store of a purge: a store; or, for a participant whose data has not arrived
    yet, also an existing empty folder (a store whose first ingest is still reading its
    batch and has written nothing yet). A missing folder is refused either way."""
    path = local_folder(path)
    if not_arrived and path.is_dir() and not any(path.iterdir()):
        return path
    return existing_store(path)


def store_to_write(path: Path) -> Path:
    """``path`` when ``ingest`` or ``extract`` may write a store there: a store, a
    missing folder (made) or an empty one; never a release or another folder's
    content (a checkout's ``store/`` package, a home directory)."""
    path = local_folder(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    return existing_store(path)
