#!/usr/bin/env bash
# The whisperX environment, ./.venv-whisperx, apart from bahfs's .venv: whisperx 3.8.6
# pins torch~=2.8.0 (with torchaudio and pyannote.audio), which cannot share .venv's
# torch 2.13. bahfs runs it as a subprocess (extractors/whisperx_runner.py); see
# extractors/asr_whisperx.py. From PyPI, torch 2.8.0 for linux is the CUDA build
# (about 3.3 GB of downloads, a 7.6 GB venv); it runs on CPU. No model weights are
# downloaded here or later: whisperX's pyannote VAD weights ship in its wheel.
# Safe to run again: skips when the stamp matches this script.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
venv=.venv-whisperx
stamp="$venv/.bahfs-whisperx-stamp"
want="$(sha256sum .ci/whisperx.sh | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
  echo "[whisperx] ready: $venv/bin/python"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "[whisperx] creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
echo "[whisperx] installing whisperx 3.8.6 and torch 2.8 into $venv (several GB)"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q --no-cache-dir whisperx==3.8.6
# the check bahfs relies on: whisperx imports, offline, and its VAD weights are there
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$venv/bin/python" -c '
import os, whisperx, torch
vad = os.path.join(os.path.dirname(whisperx.__file__), "assets", "pytorch_model.bin")
assert os.path.isfile(vad), vad
print("[whisperx] torch", torch.__version__)'
echo "$want" > "$stamp"
echo "[whisperx] ready: $venv/bin/python"
