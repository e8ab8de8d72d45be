"""A ~100 MB annotation file in the release format, read by the release reader in a
child process whose peak memory is measured.

Figures (96 MB file, 546 videos, 978k frame labels, 2 cores): composing the whole
YAML document first peaked at 1860 MB (34 s); built entry by entry
(``store.release.yamlio``) 435 MB (20 s), about 55 MB of it the interpreter and
imports. The rest grows with the file (the reader keeps every entry until it builds
its tables), so the bound asserted is a multiple of the file's size, not a constant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from store.release import codebook as cb

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: peak RSS from VmHWM: ru_maxrss would carry the parent's peak over fork and exec
_READ = """
import json, sys
from pathlib import Path
from store.release.reader import read_release
def hwm():
    line = [x for x in open("/proc/self/status") if x.startswith("VmHWM:")][0]
    return int(line.split()[1])
before = hwm()
rel = read_release(Path(sys.argv[1]))
print(json.dumps({"videos": rel.videos.height, "frames": rel.frame_labels.height,
                  "before_kb": before, "peak_kb": hwm()}))
"""
_WRITE = """
import sys
from pathlib import Path
from bahfs.sample.generate import SampleConfig, write_annotations
from bahfs.sample.release_files import video_path
root = Path(sys.argv[1])
cfg = SampleConfig(participants=90, seed=1, max_seconds=120.0, workers=1)
for job in write_annotations(root, cfg):  # the generator's own files, videos empty
    video = root / video_path(job, cfg.variant)
    video.parent.mkdir(parents=True, exist_ok=True)
    video.touch()
"""


def test_a_100mb_annotation_file_is_read_in_memory_proportional_to_it(tmp_path: Path
                                                                      ) -> None:
    subprocess.run([sys.executable, "-c", _WRITE, str(tmp_path)], check=True)
    size_mb = (tmp_path / cb.ANNOTATIONS_YAML).stat().st_size / 2**20
    assert size_mb > 85
    res = subprocess.run([sys.executable, "-c", _READ, str(tmp_path)], capture_output=True,
                         text=True, check=True)
    got = json.loads(res.stdout)
    assert got["videos"] == len(list((tmp_path / cb.VIDEOS_DIR).rglob("*.mp4")))
    assert got["frames"] > 900_000
    grew_mb = (got["peak_kb"] - got["before_kb"]) / 1024
    print(f"annotation file {size_mb:.0f} MB: peak RSS {got['peak_kb'] / 1024:.0f} MB, "
          f"{grew_mb:.0f} MB over the imports ({grew_mb / size_mb:.1f}x the file)")
    assert grew_mb < 6 * size_mb  # whole-document composition took ~19x
