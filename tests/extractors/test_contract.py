"""The contract every registered extractor must pass, run on every one of them.

As zarr-python's ``StoreTests``, one suite for all (:mod:`extractors.testing`, which
plugin packages run on their own extractors too): an extractor added to the registry
is tested here without a line of its own, on a real decoded video (a generated
sample with a face and speech).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import extractors as registry
from extractors.base import DecodedVideo, Extractor
from extractors.testing import ExtractorContract, decoded

pytestmark = pytest.mark.slow  # runs every model (CenterFace, FER, Whisper, MiniLM) twice


@pytest.fixture(scope="module")
def video(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> DecodedVideo:
    """The release's shortest video up to the end of its first answer (the face and the
    first spoken words; every model runs twice per extractor on it), cut without
    re-encoding."""
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    rel = min(truth, key=lambda r: truth[r]["n_frames"])  # the shortest video
    end = truth[rel]["utterances"][0]["end_s"] + 0.4
    clip = tmp_path_factory.mktemp("contract") / "answer.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_release / rel), "-t",
                    f"{end:.2f}", "-c", "copy", str(clip)], check=True)
    return decoded(clip, "82553__Visite_1__Q1", "82553")


#: every registered extractor that runs without a model given by path; those that need
#: one (speech_model, vggish) run this suite in their own test modules, on a model built
#: there (tests/extractors/test_<name>.py)
BUILT_IN = sorted(n for n in registry.REGISTRY if not registry.get_extractor(n).needs_model)


@pytest.fixture(scope="module", params=BUILT_IN)
def extractor(request: pytest.FixtureRequest) -> Extractor:
    cls = registry.get_extractor(request.param)
    for module in cls.requires:  # an optional extra (bash .ci/setup.sh installs them)
        pytest.importorskip(module, reason=f"{cls.name} needs the optional {module}")
    return cls()


class TestEveryRegisteredExtractor(ExtractorContract):
    """The whole contract, once per registered extractor."""
