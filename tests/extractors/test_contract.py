"""The contract every registered extractor must pass, run on every one of them.

As zarr-python's ``StoreTests``, one suite for all: an extractor added to the
registry is tested here without a line of its own. On a real decoded video (a
generated sample with a face and speech): one row per decoded frame in every
array, dtypes and shapes as declared, a frozen config, the same output twice,
and a complete provenance.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

import extractors as registry
from extractors.base import DecodedVideo, Extractor
from extractors.decode import decode_audio, open_video
from extractors.identity import split_config
from store.errors import ConfigError

pytestmark = pytest.mark.slow  # runs every model (CenterFace, FER, Whisper, MiniLM) twice


@pytest.fixture(scope="module")
def video(sample_release: Path) -> DecodedVideo:
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    rel = min(truth, key=lambda r: truth[r]["n_frames"])  # the shortest video
    path = sample_release / rel
    stream = open_video(path)
    for _ in stream:
        pass
    return DecodedVideo(path, "82553__Visite_1__Q1", "82553", stream.info,
                        np.asarray(stream.timestamps, np.float64),
                        decode_audio(path, stream.info))


@pytest.fixture(scope="module", params=sorted(registry.REGISTRY))
def extractor(request: pytest.FixtureRequest) -> Extractor:
    return registry.get_extractor(request.param)()


def test_every_array_has_one_row_per_decoded_frame_as_declared(
        extractor: Extractor, video: DecodedVideo) -> None:
    out = extractor.extract(video)
    declared = {a.name: a for a in extractor.outputs()}
    assert set(out.arrays) == set(declared) and declared
    for name, arr in out.arrays.items():
        spec = declared[name]
        assert arr.shape == (video.n_frames, *spec.shape), (extractor.name, name)
        assert arr.dtype == np.dtype(spec.dtype), (extractor.name, name)
    np.testing.assert_array_equal(out.timestamps, video.timestamps)


def test_config_is_a_frozen_dataclass(extractor: Extractor) -> None:
    cfg = extractor.config
    assert dataclasses.is_dataclass(cfg)
    field = dataclasses.fields(cfg)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, field, getattr(cfg, field))
    with pytest.raises(ConfigError, match="frozen"):
        type(extractor)(object())


def test_same_input_same_output(extractor: Extractor, video: DecodedVideo) -> None:
    first, second = extractor.extract(video), extractor.extract(video)
    assert first.spec.id == second.spec.id
    for name, arr in first.arrays.items():
        np.testing.assert_array_equal(arr, second.arrays[name], err_msg=name)


def test_provenance_is_complete(extractor: Extractor) -> None:
    spec = extractor.spec()
    assert spec.extractor == extractor.name == type(extractor).name
    # one SHA-256 per model file the extractor runs (or of its code when it has none)
    assert re.fullmatch(r"[0-9a-f]{64}(\+[0-9a-f]{64})*", spec.model_sha256)
    assert re.fullmatch(rf"{re.escape(extractor.name)}-[0-9a-f]{{12}}", spec.id)
    # the id's config is the identity fields; the run options are recorded beside it
    ident, run = split_config(extractor.config)
    assert spec.config == ident and spec.extra["run_options"] == run
    whole = {**ident, **{k: {**ident[k], **v} if isinstance(v, dict) and k in ident else v
                         for k, v in run.items()}}
    fields = dataclasses.asdict(extractor.config)
    assert {k: whole.get(k) for k in fields} == fields  # no field lost between the two
    attrs = spec.to_attrs()
    json.dumps(attrs, default=str)  # provenance travels as JSON attributes
    assert all(a["name"] and a["doc"].strip() for a in attrs["arrays"])  # documented
    assert type(spec).from_attrs(json.loads(json.dumps(attrs, default=str))).id == spec.id
