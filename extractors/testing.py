"""The extractor contract as a pytest suite, for bahfs and for packages that add
their own extractor (:mod:`extractors.plugins`), as zarr-python ships ``StoreTests``.

Subclass :class:`ExtractorContract` in a test module and give it two fixtures: an
``extractor`` (built) and a ``video`` (a :class:`extractors.base.DecodedVideo` with
sound; :func:`decoded` makes one from any file ffmpeg reads)::

    from extractors.testing import ExtractorContract, decoded

    @pytest.fixture(scope="module")
    def video(tmp_path_factory): return decoded(make_a_video(...))

    @pytest.fixture(scope="module")
    def extractor(): return PeakExtractor()

    class TestPeak(ExtractorContract):
        pass

Every test runs on a real decoded video: one row per decoded frame in every array,
dtypes and shapes as declared, a frozen config with every field declared identity or
run option, the same output twice, the feature set (id and provenance) known before
the models load and unchanged once they ran, and a complete provenance.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from extractors.base import DecodedVideo, Extractor
from extractors.decode import decode_audio, open_video
from extractors.identity import split_config
from store.errors import ConfigError


def decoded(path: Path, video_id: str = "", participant_id: str = "P") -> DecodedVideo:
    """``path`` decoded as the pipeline decodes it (frame timestamps, 16 kHz audio)."""
    stream = open_video(Path(path))
    for _ in stream:
        pass
    return DecodedVideo(Path(path), video_id or Path(path).stem, participant_id, stream.info,
                        np.asarray(stream.timestamps, np.float64),
                        decode_audio(Path(path), stream.info))


class ExtractorContract:
    """What every extractor must do; needs the fixtures ``extractor`` and ``video``."""

    def test_every_array_has_one_row_per_decoded_frame_as_declared(
            self, extractor: Extractor, video: DecodedVideo) -> None:
        out = extractor.extract(video)
        declared = {a.name: a for a in extractor.outputs()}
        assert set(out.arrays) == set(declared) and declared
        for name, arr in out.arrays.items():
            spec = declared[name]
            assert arr.shape == (video.n_frames, *spec.shape), (extractor.name, name)
            assert arr.dtype == np.dtype(spec.dtype), (extractor.name, name)
        np.testing.assert_array_equal(out.timestamps, video.timestamps)

    def test_config_is_a_frozen_dataclass(self, extractor: Extractor) -> None:
        cfg = extractor.config
        assert dataclasses.is_dataclass(cfg)
        field = dataclasses.fields(cfg)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, field, getattr(cfg, field))
        with pytest.raises(ConfigError, match="frozen"):
            type(extractor)(object())

    def test_same_input_same_output(self, extractor: Extractor, video: DecodedVideo) -> None:
        first, second = extractor.extract(video), extractor.extract(video)
        assert first.spec.id == second.spec.id
        for name, arr in first.arrays.items():
            np.testing.assert_array_equal(arr, second.arrays[name], err_msg=name)

    def test_the_feature_set_is_known_before_the_models_load(
            self, extractor: Extractor, video: DecodedVideo) -> None:
        fresh = type(extractor)(extractor.config, extractor.runtime)
        fresh.label = extractor.label
        before = fresh.spec()
        assert not fresh.loaded  # building and spec() load no model
        extractor.extract(video)  # loaded, run
        after = extractor.spec()
        assert (after.id, after.extra) == (before.id, before.extra)

    def test_provenance_is_complete(self, extractor: Extractor) -> None:
        spec = extractor.spec()
        assert spec.extractor == extractor.name == type(extractor).name
        # one SHA-256 per model file the extractor runs (or of its code when it has none)
        assert re.fullmatch(r"[0-9a-f]{64}(\+[0-9a-f]{64})*", spec.model_sha256)
        assert re.fullmatch(rf"{re.escape(extractor.name)}-[0-9a-f]{{12}}", spec.id)
        # the id's config is the identity fields; the run options are recorded beside it
        ident, run = split_config(extractor.config)
        assert spec.config == ident and spec.extra["run_options"] == run
        whole = {**ident, **{k: {**ident[k], **v} if isinstance(v, dict) and k in ident
                             else v for k, v in run.items()}}
        fields = dataclasses.asdict(extractor.config)
        assert {k: whole.get(k) for k in fields} == fields  # no field lost between the two
        attrs = spec.to_attrs()
        json.dumps(attrs, default=str)  # provenance travels as JSON attributes
        assert all(a["name"] and a["doc"].strip() for a in attrs["arrays"])  # documented
        back = type(spec).from_attrs(json.loads(json.dumps(attrs, default=str)))
        assert back.id == spec.id
        # every axis named (store.features.ArraySpec), the names kept in the attributes
        assert back.coordinates() == spec.coordinates()
        assert [a.dimension_names for a in back.arrays] == \
            [a.dimension_names for a in spec.arrays]
