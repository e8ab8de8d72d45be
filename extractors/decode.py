"""Decoding with ffmpeg (through ffmpeg-python): frames streamed at the video's own
rate with their presentation timestamps, and mono 16 kHz audio.

Frames are never resampled to a nominal rate (``-fps_mode passthrough``): webcam
recordings can have a variable frame rate, so each frame's time comes from
ffmpeg's ``showinfo`` filter, read from the same decoding run. The number of
frames downstream is the number decoded here, always.

Rotated videos (a display matrix or a ``rotate`` tag, as phones write them) decode
upright: ffmpeg turns the frames, and the frame size read is the displayed size
from :func:`store.media.probe_video`. ``showinfo`` reports the size of every frame
it passed on; a frame of any other size fails the decode rather than being read
as scrambled pixels. A decode that gives fewer frames than the probe counted
(corrupt packets that the decoder drops) fails too, naming the decoder's errors,
so no feature row is silently shifted against the frame labels.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ffmpeg
import numpy as np

from store.errors import ToolMissingError, VideoDecodeError
from store.media import VideoInfo, probe_video

AUDIO_RATE = 16_000
_PTS = re.compile(rb"\bn:\s*(\d+)\b.*?\bpts_time:\s*(-?[0-9.eE+-]+).*?\bs:(\d+)x(\d+)")


@dataclass
class FrameStream:
    """Frames of one video, decoded in batches; ``timestamps`` fills as they arrive.

    A thread reads up to ``prefetch`` batches ahead from ffmpeg's pipe, so decoding
    goes on while the caller runs its models on the previous batch (``prefetch=0``:
    read in the caller's thread, decoding waits for the models)."""

    path: Path
    info: VideoInfo
    batch: int = 32
    timestamps: list[float] = field(default_factory=list)
    n_decoded: int = 0
    prefetch: int = 2

    def _batches(self, stdout: IO[bytes]) -> Generator[np.ndarray, None, None]:
        w, h = self.info.width, self.info.height
        frame_bytes = w * h * 3
        while buf := stdout.read(frame_bytes * self.batch):
            n = len(buf) // frame_bytes
            if n * frame_bytes != len(buf):
                raise VideoDecodeError("decoder returned a partial frame", path=self.path)
            yield np.frombuffer(buf, np.uint8).reshape(n, h, w, 3)

    def _ahead(self, stdout: IO[bytes], stop: threading.Event
               ) -> Generator[np.ndarray, None, None]:
        """:meth:`_batches`, read by a thread up to ``prefetch`` batches ahead."""
        ready: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(self.prefetch)

        def put(item: np.ndarray | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def pump() -> None:
            try:
                for batch in self._batches(stdout):
                    put(batch)
            except BaseException as exc:  # handed to the caller, raised there
                put(exc)
            put(None)

        thread = threading.Thread(target=pump, daemon=True, name="bahfs-decode")
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=10)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Batches of RGB frames, uint8 ``(B, H, W, 3)``, in decoding order."""
        w, h = self.info.width, self.info.height
        proc = (ffmpeg.input(str(self.path))
                .output("pipe:", format="rawvideo", pix_fmt="rgb24", vf="showinfo",
                        fps_mode="passthrough", map="0:v:0")
                .global_args("-nostdin", "-hide_banner", "-loglevel", "info")
                .run_async(pipe_stdout=True, pipe_stderr=True))
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
        reader.start()
        stop = threading.Event()
        done = False
        batches = self._ahead(proc.stdout, stop) if self.prefetch > 0 else \
            self._batches(proc.stdout)
        try:
            for frames in batches:
                self.n_decoded += len(frames)
                yield frames
            done = True
        finally:
            if not done:  # the caller stopped early, or reading failed: stop ffmpeg
                stop.set()
                proc.kill()
            batches.close()  # joins the reading thread
            code = proc.wait()
            proc.stdout.close()
            reader.join(timeout=10)
        log = b"".join(stderr)
        if code != 0:
            raise VideoDecodeError(f"ffmpeg failed to decode: {_errors(log, 3)}",
                                   path=self.path, expected="a decodable video stream")
        shown = list(_PTS.finditer(log))
        sizes = {(int(m[3]), int(m[4])) for m in shown}
        if sizes - {(w, h)}:
            raise VideoDecodeError(
                f"ffmpeg decoded frames of {sorted(sizes)} (width, height), the probe "
                f"said {w}x{h} (rotation {self.info.rotation})", path=self.path,
                expected=f"every frame {w}x{h}")
        self.timestamps = [float(m[2]) for m in shown]
        if len(self.timestamps) != self.n_decoded or self.n_decoded == 0:
            raise VideoDecodeError(
                f"decoded {self.n_decoded} frames but read {len(self.timestamps)} timestamps",
                path=self.path, expected="one timestamp per decoded frame")
        if self.n_decoded != self.info.n_frames:
            raise VideoDecodeError(
                f"decoded {self.n_decoded} frames of the {self.info.n_frames} the file holds "
                f"(corrupt or undecodable packets: {_errors(log, 2) or 'no decoder error'})",
                path=self.path, expected=f"{self.info.n_frames} decodable frames")


def _errors(log: bytes, n: int) -> str:
    """The first ``n`` distinct error lines of an ffmpeg log (progress lines else)."""
    lines = [ln.strip() for ln in log.decode(errors="replace").splitlines()
             if ln.strip() and "showinfo" not in ln]
    bad = [ln for ln in lines if any(w in ln.lower() for w in ("error", "invalid", "fail"))]
    return " / ".join(list(dict.fromkeys(bad or lines[-n:]))[:n])


def open_video(path: Path, batch: int = 32, prefetch: int = 2) -> FrameStream:
    """Probe ``path`` and return a stream of its frames (errors name the file)."""
    path = Path(path)
    info = probe_video(path)
    if info.width <= 0 or info.height <= 0:
        raise VideoDecodeError("video stream has no frame size", path=path)
    return FrameStream(path, info, batch, prefetch=prefetch)


def decode_audio(path: Path, info: VideoInfo | None = None) -> np.ndarray | None:
    """The whole soundtrack as float32 mono at 16 kHz, or None without an audio stream."""
    info = info or probe_video(Path(path))
    if not info.has_audio:
        return None
    out = ffmpeg_output(ffmpeg.input(str(path)).output("pipe:", format="f32le", ac=1,
                                                        ar=AUDIO_RATE, map="0:a:0"),
                        path, "the audio", "a decodable audio stream")
    return np.frombuffer(out, np.float32).copy()


def ffmpeg_output(node: Any, path: Path, what: str, expected: str) -> bytes:
    """Run an ffmpeg-python output ``node`` reading ``path``; its standard output.
    ffmpeg's failure is a :class:`VideoDecodeError` naming the file, ``what`` was being
    decoded and its own last error lines; ffmpeg not installed is a
    :class:`ToolMissingError`; any other OS error starting it (no memory to fork) is
    raised as it is, for the classification to read."""
    try:
        out, _ = (node.global_args("-nostdin", "-loglevel", "error")
                  .run(capture_stdout=True, capture_stderr=True))
    except ffmpeg.Error as exc:
        msg = (exc.stderr or b"").decode(errors="replace").strip()[-300:]
        raise VideoDecodeError(f"ffmpeg failed to decode {what}: {msg}", path=path,
                               expected=expected) from exc
    except FileNotFoundError as exc:  # the executable, not the video (opened by ffmpeg)
        raise ToolMissingError("ffmpeg is not installed", path=exc.filename,
                               expected="ffmpeg on PATH (apt-get install ffmpeg)") from exc
    except subprocess.SubprocessError as exc:
        raise VideoDecodeError(f"cannot run ffmpeg: {exc}", path=path) from exc
    return bytes(out)
