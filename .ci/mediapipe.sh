#!/usr/bin/env bash
# MediaPipe face mesh, iris and body pose (TFLite, inside the pinned mediapipe wheel)
# converted to ONNX into MODELS_DIR; mediapipe itself is never installed.
#   bash .ci/mediapipe.sh TF_PYTHON MODELS_DIR
# TF_PYTHON: the throwaway venv's python (tensorflow-cpu, tf2onnx); onnxruntime is added
# there for the ONNX-vs-TFLite check. Skips when every model is already converted.
set -euo pipefail
cd "$(dirname "$0")/.."
tfpy="$1"
models="$2"
wheel_sha=a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4
need=0
for m in mp_face_landmark mp_iris_landmark mp_pose_landmark_full; do
  [ -s "$models/$m.onnx" ] && [ -s "$models/$m.json" ] || need=1
done
[ "$need" = 1 ] || exit 0
echo "[setup] converting MediaPipe face mesh, iris and pose (mediapipe==0.10.14 wheel) to ONNX into $models"
dl="$(mktemp -d)"
"$tfpy" -m pip download -q --no-deps mediapipe==0.10.14 \
  --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 -d "$dl"
wheel="$(ls "$dl"/mediapipe-0.10.14-*.whl)"
echo "$wheel_sha  $wheel" | sha256sum -c --quiet -
"$tfpy" -m pip install -q onnxruntime==1.32.0
TF_CPP_MIN_LOG_LEVEL=3 "$tfpy" extractors/convert/mediapipe_to_onnx.py "$models" "$wheel" 2>/dev/null
rm -rf "$dl"
