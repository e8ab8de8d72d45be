"""Face crops in the store: bytes per frame and window reads, raw against compressed.

Ingests DATASET into a temporary store, extracts the ``face_crop`` feature set of
its first videos (real decoding, CenterFace, alignment) through the writer (one
raw chunk per array: the reader's memory-mapped fast path), then stores the same
crops compressed (zstd level 3 and blosc-lz4 with bit shuffle, 32-frame chunks, read
through zarr-python) and reads random 96-frame windows through ``FeatureReader``
from each. The ratio against the raw layout is the figure to watch.

    .venv/bin/python -m benchmarks.crops DATASET [--videos 4] [--size 112]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from extractors.face_crop import FaceCropConfig, FaceCropExtractor
from extractors.pipeline import extract_all
from store.ingest import ingest
from store.layout import video_dir
from store.reader import FeatureReader
from store.tables import read_table
from store.writer import FeatureWriter

WINDOW = 96


def _bytes(store: Path, fs: str) -> int:
    return sum(f.stat().st_size for f in (store / "features.zarr" / fs).rglob("*")
               if f.is_file() and f.name != "zarr.json")


def _windows_per_s(store: Path, fs: str, items: list[tuple[str, int]]) -> float:
    reader = FeatureReader(store)
    for vid, s in items[:5]:  # warm the page cache and the reader's maps
        reader.read_rows(fs, vid, "crop", s, s + WINDOW)
    t0 = time.perf_counter()
    for vid, s in items:
        reader.read_rows(fs, vid, "crop", s, s + WINDOW)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--size", type=int, default=112)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bahfs-crops-"))
    store = work / "raw"
    ingest(args.dataset, store)
    videos = read_table(store, "videos").head(args.videos)
    extractor = FaceCropExtractor(FaceCropConfig(size=args.size))
    fs = extractor.spec().id
    t0 = time.perf_counter()
    writer = FeatureWriter(store)
    for vid, pid, src, path in videos.select("video_id", "participant_id", "source",
                                             "path").iter_rows():
        (feats,) = extract_all(Path(src) / path, [extractor], video_id=vid, participant_id=pid)
        writer.write(feats)
    frames = int(videos["n_frames"].sum())
    print(f"{videos.height} videos, {frames} frames, {args.size}x{args.size} crops: "
          f"extracted in {time.perf_counter() - t0:.1f} s")
    rng = np.random.default_rng(0)
    items = [(v, int(rng.integers(0, n - WINDOW))) for v, n in
             videos.select("video_id", "n_frames").iter_rows() for _ in range(100)]
    raw_b, raw_w = _bytes(store, fs) / frames, _windows_per_s(store, fs, items)
    print(f"raw, one chunk (fast path): {raw_b:,.0f} B/frame, {raw_w:,.0f} windows/s")
    for name, codec in (("zstd-3", ZstdCodec(level=3)),
                        ("blosc-lz4+bitshuffle", BloscCodec(cname="lz4", clevel=5,
                                                            shuffle="bitshuffle"))):
        other = work / name
        shutil.copytree(store, other)
        for vid, pid in videos.select("video_id", "participant_id").iter_rows():
            group = zarr.open_group(str(video_dir(other, fs, pid, vid)), mode="a")
            data = group["crop"][...]
            del group["crop"]
            group.create_array("crop", shape=data.shape, dtype="uint8",
                               chunks=(32, *data.shape[1:]), compressors=codec)[...] = data
        b, w = _bytes(other, fs) / frames, _windows_per_s(other, fs, items)
        print(f"{name}, 32-frame chunks: {b:,.0f} B/frame ({raw_b / b:.2f}x smaller), "
              f"{w:,.0f} windows/s ({w / raw_w:.2f}x the raw read speed)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
