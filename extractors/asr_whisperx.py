"""The whisperX backend of the ``words`` extractor, run in its own environment.

whisperX 3.8 pins ``torch~=2.8`` (with torchaudio and pyannote.audio 4), which
cannot share bahfs's environment (torch 2.13, no torchaudio build for it). So
``bash .ci/whisperx.sh`` makes a second environment, ``.venv-whisperx`` (whisperx
3.8.6, torch 2.8 from PyPI; about 7.6 GB), and bahfs runs whisperX there as a
subprocess, ``extractors/whisperx_runner.py``, which speaks JSON lines (described
there). A :class:`WhisperxClient` (one per worker context,
:class:`extractors.context.WorkerContext`) starts its runner on first use and keeps it
until the context closes: models load once and serve every video of the context;
two contexts have two runners and never wait on each other. ``BAHFS_WHISPERX_PYTHON`` names the
interpreter (default ``.venv-whisperx/bin/python`` of this checkout) and
``BAHFS_WHISPERX_TIMEOUT`` the seconds one video may take (default 3600).

With ``SpeechConfig(asr_backend="whisperx", align_model_dir=DIR)``, transcription
runs through whisperX (its bundled pyannote VAD, batched faster-whisper), and words
are timed by whisperX's forced aligner with the local wav2vec2 CTC model in ``DIR``
(a Hugging Face folder the user provides; nothing is downloaded). Words the aligner
cannot time come back with ``start``/``end`` None and are interpolated by the
caller, as for the default backend (faster-whisper, Whisper's own word times).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from extractors.runtime import AUTO
from store.devices import DeviceSetting
from store.errors import ConfigError, DeviceError, ExtractionError, ModelError

RUNNER = Path(__file__).with_name("whisperx_runner.py")
DEFAULT_PYTHON = Path(__file__).resolve().parents[1] / ".venv-whisperx" / "bin" / "python"
BATCH_SIZE = 8
START_TIMEOUT_S = 600.0
INSTALL_HINT = "`bash .ci/whisperx.sh` (or BAHFS_WHISPERX_PYTHON set to its interpreter)"
_ERRORS: dict[str, type[ModelError] | type[ConfigError] | type[DeviceError]] = {
    "config": ConfigError, "model": ModelError, "extraction": ExtractionError,
    "device": DeviceError}


def whisperx_python() -> Path:
    """The interpreter of the whisperX environment."""
    return Path(os.environ.get("BAHFS_WHISPERX_PYTHON") or DEFAULT_PYTHON)


class _Runner:
    """One ``whisperx_runner.py`` child: a request line in, a reply line out."""

    def __init__(self, python: Path) -> None:
        if not python.is_file():
            raise ConfigError("whisperX environment not installed: run `bash .ci/whisperx.sh`",
                              path=python, expected=f"the whisperX interpreter, made by "
                              f"{INSTALL_HINT}, or asr_backend 'faster-whisper'")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYANNOTE_METRICS_ENABLED": "0"}
        self.python, self.pid = python, os.getpid()
        self.log: IO[bytes] = tempfile.TemporaryFile(prefix="bahfs-whisperx-")
        self.proc = subprocess.Popen([str(python), "-I", str(RUNNER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=env)
        self._buf = b""
        hello = self._read(START_TIMEOUT_S)
        if not hello.get("ready"):
            self.close()
            raise _error(hello)

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.proc.stdin is None:
            raise ExtractionError("the whisperX runner has no input pipe", path=RUNNER,
                                  expected="a runner started by asr_whisperx")
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self._died()
        return self._read(timeout)

    def _read(self, timeout: float) -> dict[str, Any]:
        """The next reply line, waiting at most ``timeout`` seconds."""
        fd = self.proc.stdout.fileno() if self.proc.stdout else -1
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise ExtractionError(f"the whisperX runner gave no answer in {timeout:.0f} s",
                                      path=RUNNER, expected="a longer BAHFS_WHISPERX_TIMEOUT "
                                      "or shorter audio" + self._stderr_tail())
            if select.select([fd], [], [], min(left, 1.0))[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._died()
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            self.close()
            raise ExtractionError("the whisperX runner wrote a line that is not JSON",
                                  path=RUNNER, expected=f"one JSON reply, got {line[:200]!r}"
                                  ) from exc
        return reply

    def _died(self) -> NoReturn:
        self.close()
        raise ExtractionError(f"the whisperX runner exited (code {self.proc.returncode})",
                              path=self.python, expected="a runner that answers; "
                              "its standard error:" + self._stderr_tail())

    def _stderr_tail(self) -> str:
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-15:]
        return ("\n" + "\n".join(tail)) if tail else " (empty)"

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _error(reply: dict[str, Any]) -> ModelError | ConfigError | DeviceError:
    cls = _ERRORS.get(str(reply.get("kind")), ExtractionError)
    return cls(str(reply.get("message", "the whisperX runner failed")),
               path=reply.get("path") or str(RUNNER), expected=reply.get("expected"))


def _stop(box: list[_Runner]) -> None:
    for runner in box:
        if runner.pid == os.getpid():
            runner.close()
    box.clear()


class WhisperxClient:
    """The whisperX runner of one worker context: started on first :meth:`ask` (and
    again when it died or the process forked), its calls one at a time, stopped by
    :meth:`close` (or when the client is collected, or at exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._box: list[_Runner] = []  # the runner, once started
        self._finalizer = weakref.finalize(self, _stop, self._box)

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request to the runner of :func:`whisperx_python`, its reply."""
        with self._lock:
            python = whisperx_python()
            current = self._box[0] if self._box else None
            if current is None or not current.alive() or current.python != python:
                _stop(self._box)
                current = _Runner(python)
                self._box.append(current)
            return current.ask(request, timeout)

    @property
    def running(self) -> bool:
        return bool(self._box) and self._box[0].alive()

    def close(self) -> None:
        """Stop the runner this client started (if any)."""
        with self._lock:
            _stop(self._box)


def transcribe_whisperx(audio: np.ndarray, model_dir: str, compute_type: str,
                        language: str, align_dir: str,
                        device: DeviceSetting = AUTO, *, client: WhisperxClient
                        ) -> dict[str, Any]:
    """Transcript in the ``words`` extractor's format, from ``client``'s runner: ``language``, its
    ``language_probability`` (1.0 when given or for an English-only model, else
    Whisper's detection probability) and timed ``words`` (``start``/``end`` None
    where the aligner had none)."""
    if not (Path(align_dir) / "config.json").is_file():
        raise ModelError("whisperX word alignment needs a local wav2vec2 model folder",
                         path=align_dir or "(align_model_dir not set)",
                         expected="a Hugging Face wav2vec2 CTC model folder with config.json")
    if not (Path(model_dir) / "model.bin").is_file():
        raise ModelError("whisperX needs a local CTranslate2 Whisper model folder",
                         path=model_dir, expected="a folder with model.bin")
    timeout = float(os.environ.get("BAHFS_WHISPERX_TIMEOUT") or 3600)
    with tempfile.TemporaryDirectory(prefix="bahfs-whisperx-") as tmp:
        npy = Path(tmp) / "audio.npy"
        np.save(npy, np.ascontiguousarray(audio, np.float32).reshape(-1))
        request = {"audio": str(npy), "model_dir": str(Path(model_dir).resolve()),
                   "compute_type": compute_type, "language": language,
                   "align_model_dir": str(Path(align_dir).resolve()),
                   "batch_size": BATCH_SIZE, "device": str(device)}
        reply = client.ask(request, timeout)
    if not reply.get("ok"):
        raise _error(reply)
    return {"language": reply["language"],
            "language_probability": float(reply["language_probability"]),
            "words": list(reply["words"]), "device": str(reply.get("device", "cpu"))}
