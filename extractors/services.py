"""What the extractors of one worker context share while they run.

A :class:`Services` is made by a worker context (:mod:`extractors.context`) and
given to every extractor it loads (:meth:`extractors.base.Extractor.load`); an
extractor loaded on its own (a test, ``bahfs extract-video``) makes its own. It holds:

* ``server``: the model thread that gathers the ONNX Runtime calls of the videos in
  flight (:class:`extractors.batching.ModelServer`), when the runtime sets
  ``batch_rows``; None otherwise (each video calls its sessions itself);
* ``whisperx``: the whisperX runner of the ``whisperx`` ASR backend
  (:class:`extractors.asr_whisperx.WhisperxClient`), started on first use.

:meth:`Services.close` ends both.
"""

from __future__ import annotations

from dataclasses import dataclass

from extractors.asr_whisperx import WhisperxClient
from extractors.batching import ModelServer
from extractors.runtime import Runtime


@dataclass
class Services:
    """The model thread and the whisperX runner of one worker context."""

    server: ModelServer | None
    whisperx: WhisperxClient

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> Services:
        """A model thread when ``runtime.batch_rows`` asks for one; a whisperX client."""
        server = ModelServer(runtime.batch_rows) if runtime.batch_rows > 0 else None
        return cls(server, WhisperxClient())

    def close(self) -> None:
        """End the model thread (after the calls queued) and stop the whisperX runner."""
        if self.server is not None:
            self.server.close()
        self.whisperx.close()
