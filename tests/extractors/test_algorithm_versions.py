"""Extractors without a model file get ids that change with their algorithm: each
declares ``algorithm_version`` (part of its id), and this test holds the version to
the code that computes the numbers (:func:`extractors.algorithm.computing_sha256`).

When a test here fails because the code changed: if the numbers change, raise the
extractor's ``algorithm_version`` (its feature set gets a new id, the old one stays
in stores) and pin the new version with the new hash; if they do not (a comment, a
rename, a refactor with bit-identical output), pin the new hash under the same
version."""

from __future__ import annotations

import hashlib

import pytest

import extractors  # noqa: F401 - registers the built-in extractors
from extractors.algorithm import computing_sha256, computing_source
from extractors.audio import LogMelConfig, LogMelExtractor
from extractors.base import REGISTRY, Extractor

#: extractor name -> (algorithm_version, SHA-256 of its computing source)
PINNED: dict[str, tuple[int, str]] = {
    "logmel": (1, "3b2d66b84f923935e7b93fdfec58344f23c2cb690661e42c110dc04939fbbda1"),
}


def _code_only() -> list[str]:
    """The built-in extractors whose id hashes no model file (the base class's
    ``model_sha256``)."""
    return sorted(name for name, cls in REGISTRY.items()
                  if cls.__module__.startswith("extractors.")
                  and cls.model_sha256 is Extractor.model_sha256)


def test_every_code_only_extractor_is_pinned() -> None:
    assert _code_only() == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_algorithm_version_is_held_to_the_code(name: str) -> None:
    cls = REGISTRY[name]
    version, pinned = PINNED[name]
    got = computing_sha256(cls)
    assert (cls.algorithm_version, got) == (version, pinned), (
        f"the code computing {name!r} changed (its computing source now hashes to {got}). "
        f"If its numbers change, raise {cls.__name__}.algorithm_version to "
        f"{cls.algorithm_version + 1} and pin ({cls.algorithm_version + 1}, {got!r}) in "
        f"{__file__}; if they do not, pin ({cls.algorithm_version}, {got!r}).")


def test_the_computing_source_follows_the_functions_and_constants_used() -> None:
    text = computing_source(LogMelExtractor)
    for used in ("def log_mel_frames", "def mel_filterbank", "def audio_coverage",
                 "def frame_windows", "def gather", "_N_FFT = 400", "_HOP = 160",
                 "AUDIO_RATE = 16000"):
        assert used in text, used
    assert "class LogMelConfig" not in text  # configs enter the id as identity fields


def test_version_one_keeps_todays_ids_and_another_version_changes_them() -> None:
    today = hashlib.sha256(b"extractors.audio.LogMelExtractor").hexdigest()
    assert LogMelExtractor().model_sha256() == today
    assert LogMelExtractor().spec().id == "logmel-bc92e3bd0863"  # stores written today

    class Revised(LogMelExtractor):
        algorithm_version = 2

    Revised.__qualname__ = LogMelExtractor.__qualname__
    Revised.__module__ = LogMelExtractor.__module__
    revised = Revised(LogMelConfig())
    assert revised.model_sha256() == hashlib.sha256(
        b"extractors.audio.LogMelExtractor@2").hexdigest()
    assert revised.spec().id != LogMelExtractor().spec().id
