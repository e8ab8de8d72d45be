"""The input videos of a store in a bucket: uploaded at ingest, fetched by workers.

A worker on another host cannot read the release folder ingest read, so ingest puts
each video it records as extractable under ``sources/<participant>/<video><ext>``
(:func:`store.layout.source_key`) in the store's bucket, and a worker downloads it
into a temporary folder of its own for as long as it decodes the video. A purge
removes a participant's sources with their features (:meth:`S3Store.remove_participant`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.layout import SOURCES, check_name, source_key
from store.s3_objects import Bucket


def put_source(bucket: Bucket, participant_id: str, video_id: str, file: Path) -> bool:
    """Upload ``file`` as the source of the video unless an object of the same size
    is there already; whether it was uploaded."""
    key = source_key(participant_id, video_id, file.suffix)
    head = bucket.head(key)
    if head is not None and head["size"] == file.stat().st_size:
        return False
    bucket.upload(key, file)
    return True


@contextmanager
def fetched(bucket: Bucket, participant_id: str, video_id: str, recorded: Path
            ) -> Iterator[Path]:
    """The video's uploaded source, downloaded into a new folder of this process's
    temporary directory (removed on exit); ``recorded`` itself where the bucket holds
    no source of the video (a store ingested before sources were uploaded)."""
    key = source_key(participant_id, video_id, recorded.suffix)
    if not bucket.exists(key):
        yield recorded
        return
    folder = Path(tempfile.mkdtemp(prefix="bahfs-source-"))
    try:
        local = folder / f"{video_id}{recorded.suffix}"
        bucket.download(key, local)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_sources(bucket: Bucket, participant_id: str) -> int:
    """Delete every uploaded source of a participant; how many objects."""
    return bucket.delete_prefix(f"{SOURCES}/{check_name('participant', participant_id)}/")
