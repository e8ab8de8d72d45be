"""The plugin's own tests: bahfs's extractor contract suite on ``peak``, imported from
bahfs (run with bahfs and this package installed: ``pytest contract_check.py``)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import extractors
from extractors.base import DecodedVideo, Extractor
from extractors.testing import ExtractorContract, decoded


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> DecodedVideo:
    """Two seconds of a test pattern with a 440 Hz tone, made by ffmpeg."""
    out = tmp_path_factory.mktemp("peak") / "tone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:v", "libx264", "-c:a", "aac",
                    "-shortest", str(out)], check=True)
    return decoded(out)


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return extractors.get_extractor("peak")()  # found through the entry point


class TestPeakContract(ExtractorContract):
    """bahfs's contract, unchanged."""


def test_a_tone_crosses_zero_880_times_a_second(extractor: Extractor,
                                                video: DecodedVideo) -> None:
    out = extractor.extract(video).arrays
    inside = out["has_audio"] & (video.timestamps > 0.2) & (video.timestamps < 1.7)
    np.testing.assert_allclose(out["zcr"][inside], 880, rtol=0.05)
    assert (out["peak_db"][inside] > -20).all()
