"""Export to the per-video array layout of the official BAH baseline code.

For each chosen (feature set, array) and each video, one ``.npy`` file of
``n_frames`` rows, plus one label array per video:

```
OUT/<modality>/Videos/<participant>/<visit>/<video stem>.npy   (n_frames, dim) features
OUT/video/Videos/<participant>/<visit>/<video stem>.npy  (n_frames, S, S, 3) uint8 face crops
OUT/labels/Videos/<participant>/<visit>/<video stem>.npy        (n_frames,) int64 0/1
OUT/<split>.txt                                  <video id>,<label>,<transcript>
OUT/export.json                                  feature sets and provenance
```
The paths mirror the release's video ids (``release_id``, ``Videos/`` included), so
the baseline's loaders can be pointed at ``OUT`` instead of its own feature folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from store.backend import Store
from store.errors import NotFoundError
from store.local import as_store
from store.reader import FeatureReader


@dataclass(frozen=True)
class ExportReport:
    out: str
    videos: int
    modalities: dict[str, str]  # modality -> "<feature set>:<array>"


def export_baseline(store: Store | Path, out: Path, sources: dict[str, str] | None = None
                    ) -> ExportReport:
    """Write the baseline layout. ``sources`` maps a modality folder name to a feature
    set id or extractor name, optionally ``:array``; default: every feature set, its
    first declared array, under the extractor's name (the aligned face crops of
    ``face_crop`` under ``video``, the official baseline's ``video.npy``). Every folder
    and file written gets the store's access policy (:mod:`store.access`)."""
    st = as_store(store)
    access = st.access
    reader = FeatureReader(st)
    sets = reader.featuresets()
    if sources is None:
        sources = {("video" if s.extractor == "face_crop" else s.extractor): fs
                   for fs, s in sets.items()}
    chosen: dict[str, tuple[str, str]] = {}
    for modality, ref in sources.items():
        name, _, array = ref.partition(":")
        fs = reader.resolve(name)
        array = array or sets[fs].arrays[0].name
        if array not in {a.name for a in sets[fs].arrays}:
            raise NotFoundError(f"feature set {fs} has no array {array!r}",
                                expected=str([a.name for a in sets[fs].arrays]))
        chosen[modality] = (fs, array)
    videos = st.read_table("videos")
    complete = set.intersection(*(set(reader.extracted(fs)) for fs, _ in chosen.values())) \
        if chosen else set()
    n_done = 0
    split_lines: dict[str, list[str]] = {}
    for row in videos.iter_rows(named=True):
        vid = row["video_id"]
        if vid not in complete:
            continue
        stem = str(PurePosixPath(row["release_id"]).with_suffix(""))
        for modality, (fs, array) in chosen.items():
            target = out / modality / f"{stem}.npy"
            access.make_dirs(target.parent)
            np.save(target, reader.read_rows(fs, vid, array, 0, row["n_frames"]))
            access.apply(target, is_dir=False)
        labelled = row["global_label"] is not None  # withheld: no label file, empty label
        if labelled:
            target = out / "labels" / f"{stem}.npy"
            access.make_dirs(target.parent)
            np.save(target, reader.labels(vid).astype(np.int64))
            access.apply(target, is_dir=False)
        split_lines.setdefault(row["split"], []).append(
            f"{row['release_id']},{row['global_label'] if labelled else ''},"
            f"{row['transcript'] or ''}")
        n_done += 1
    access.make_dirs(out)
    for split, lines in split_lines.items():
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        access.apply(out / f"{split}.txt", is_dir=False)
    (out / "export.json").write_text(json.dumps({
        m: {"feature_set": fs, "array": a, "provenance": sets[fs].to_attrs()}
        for m, (fs, a) in chosen.items()}, indent=2, default=str), encoding="utf-8")
    access.apply(out / "export.json", is_dir=False)
    return ExportReport(str(out), n_done, {m: f"{fs}:{a}" for m, (fs, a) in chosen.items()})
