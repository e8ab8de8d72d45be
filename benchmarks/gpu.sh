#!/usr/bin/env bash
# On the lent H200 machine, once every piece of the kit is in /tmp/kit (made here by
# benchmarks/gpu_kit.sh, carried by ../shared/device-kit/pieces.py): install the kit
# into /tmp, then run benchmarks/worker.py on the GPU. About 3 minutes: the models on
# CUDA, 1, 2, 4 and 8 videos in flight over the kit's 640x480 sample videos, absolute
# frames per second, model-call occupancy and the model thread's idle fraction, and
# each row's largest difference from one video at a time without the model thread.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${KIT:-/tmp/kit}  # the kit's files, put there by its pieces
SITE=${SITE:-/tmp/site}  # where its wheels are installed
FILES=${FILES:-/tmp/bahfs-kit}  # its models, videos and ffmpeg
OUT=${OUT:-/tmp/bahfs-gpu-out}
mkdir -p "$SITE" "$FILES/bin" "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --python-version 3.12 --only-binary=:all: --target "$SITE" "$KIT"/*.whl
tar -xf "$KIT/kit.tar" -C "$FILES"
cp "$SITE"/imageio_ffmpeg/binaries/ffmpeg-linux-* "$FILES/bin/ffmpeg"
tar -xzf "$FILES"/ffprobe-installer-linux-x64-*.tgz -O package/ffprobe >"$FILES/bin/ffprobe"
chmod +x "$FILES"/bin/*
export PYTHONPATH="$SITE:$PWD" PATH="$FILES/bin:$PATH" BAHFS_MODELS="$FILES/models" \
  PYTHONUNBUFFERED=1
nvidia-smi -L
ffmpeg -version | head -1
ffprobe -version | head -1
python3 -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.__file__,
                                       o.get_available_providers())'
ls "$FILES/videos" | wc -l
set -o pipefail
timeout 480 python3 -m benchmarks.worker --device cuda --videos "$FILES/videos" \
  --in-flight 1,2,4,8 --max-rows 128 --extractors face,logmel 2>&1 | tee "$OUT/worker.txt"
