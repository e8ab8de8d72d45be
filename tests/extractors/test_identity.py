"""A feature set's id is what changes its numbers: every field of every registered
extractor's config is walked; a run option leaves the id as it is, an identity field
changes it. A store written the old way (run options in the id) keeps its features."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import extractors
from extractors.base import Extractor
from extractors.identity import IDENTITY, RUN_OPTION, identity, split_config, walk_fields
from extractors.migrate import migrate_feature_set_ids
from extractors.speech import SpeechConfig
from store.errors import ConfigError


def _installed(modules: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# bahfs's own extractors that build with their defaults here (a model by path, or an
# optional extra not installed, leaves one out; their own test modules cover them)
OURS = sorted(n for n, c in extractors.REGISTRY.items()
              if c.__module__.startswith("extractors.") and not c.needs_model
              and _installed(c.requires))


def with_field(config: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    if rest:
        return dataclasses.replace(config, **{head: with_field(getattr(config, head), rest,
                                                               value)})
    return dataclasses.replace(config, **{head: value})


def get_field(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = getattr(config, part)
    return config


def other(value: Any) -> Any:
    """Another value of the same type (one that changes what a field says)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.125
    if isinstance(value, str):
        return f"{value}_other"
    raise TypeError(value)


def id_with(built: Extractor, config: Any) -> str:
    """The id the built extractor (its models loaded) gives with another config."""
    twin = copy.copy(built)
    twin.config = config
    return twin.spec().id


@pytest.fixture(scope="module")
def built() -> dict[str, Extractor]:
    return {name: extractors.get_extractor(name)() for name in OURS}


@pytest.mark.parametrize("name", OURS)
def test_run_options_keep_the_id_identity_fields_change_it(
        name: str, built: dict[str, Extractor]) -> None:
    ex = built[name]
    base = ex.config
    fields = walk_fields(type(base))
    assert {k for _, k in fields} <= {IDENTITY, RUN_OPTION} and fields
    for path, kind in fields:
        value = get_field(base, path)
        if kind == RUN_OPTION:  # two values of the same kind (batched stays batched)
            a, b = (4, 64) if isinstance(value, int) else (value, other(value))
            assert id_with(ex, with_field(base, path, a)) == \
                id_with(ex, with_field(base, path, b)), f"{name}: {path} is a run option"
        else:
            assert id_with(ex, with_field(base, path, other(value))) != ex.spec().id, \
                f"{name}: {path} is identity"
    assert ex.spec().extra["run_options"] == split_config(base)[1]


def test_batched_whisper_or_not_is_identity(built: dict[str, Extractor]) -> None:
    words = built["words"]
    sequential = id_with(words, SpeechConfig(asr_batch_size=0))
    assert id_with(words, SpeechConfig(asr_batch_size=8)) != sequential
    assert split_config(SpeechConfig(asr_batch_size=8)) == (
        {**split_config(SpeechConfig())[0], "asr_batched": True}, {"asr_batch_size": 8})


def test_an_undeclared_field_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Loose:
        a: int = identity(1)
        b: int = 2

    with pytest.raises(ConfigError, match=r"Loose\.b is neither identity nor a run option"):
        split_config(Loose())


def test_bahfs_plan_gives_one_id_for_any_batch(tmp_path: Path) -> None:
    from bahfs.cli import app

    ids = []
    for options in ("detector: {batch: 16}", "detector: {batch: 64}",
                    "detector: {threshold: 0.6}"):
        plan = tmp_path / "plan.yaml"
        plan.write_text(f"face_crop: {{{options}}}\n")
        out = CliRunner().invoke(app, ["plan", "--plan", str(plan)])
        assert out.exit_code == 0, out.output
        ids.append(out.output.split()[0])
    assert ids[0] == ids[1] != ids[2]


def _old_spec(ex: Extractor) -> Any:
    """The spec as bahfs wrote it before run options left the id: the whole config."""
    from store.features import FeatureSetSpec

    return FeatureSetSpec(ex.name, dataclasses.asdict(ex.config), ex.model_sha256(),
                          ex.outputs(), extra=ex.provenance())


@pytest.mark.slow  # two videos extracted the old way (~40 s on 2 shared cores)
def test_a_store_written_the_old_way_keeps_its_features(sample_release: Path,
                                                        tmp_path: Path) -> None:
    from extractors.audio import LogMelExtractor
    from extractors.face_detect import FaceDetectConfig, FaceDetector
    from extractors.pipeline import extract_all
    from flows.job import VideoJob, pending_jobs
    from store.features import VideoFeatures
    from store.ingest import ingest
    from store.reader import FeatureReader
    from store.tables import read_table
    from store.verify import verify_store
    from store.writer import FeatureWriter

    store = tmp_path / "store"
    ingest(sample_release, store)
    rows = read_table(store, "videos").sort("n_frames").select(
        "video_id", "participant_id", "source", "path", "n_frames").rows()[:2]
    jobs = [VideoJob(v, p, s, r, int(n)) for v, p, s, r, n in rows]
    small, big = FaceDetector(FaceDetectConfig(batch=16)), FaceDetector(FaceDetectConfig(batch=64))
    logmel = LogMelExtractor()
    writer, arrays = FeatureWriter(store), {}
    for job, det in zip(jobs, (small, big), strict=True):  # one video under each old id
        for f in extract_all(job.file, [det, logmel], video_id=job.video_id,
                             participant_id=job.participant_id):
            ex = det if f.spec.extractor == "face_detect" else logmel
            writer.write(VideoFeatures(_old_spec(ex), f.video_id, f.participant_id,
                                       f.timestamps, f.arrays, f.attrs))
            arrays[(f.spec.extractor, job.video_id)] = f.arrays
    old_small, old_big = _old_spec(small).id, _old_spec(big).id
    new_id = small.spec().id
    assert old_small != old_big and new_id not in (old_small, old_big)
    assert big.spec().id == new_id  # the batch no longer enters the id
    assert logmel.spec().id == _old_spec(logmel).id  # no run options: the same id
    assert not verify_store(store)

    moved = migrate_feature_set_ids(store)
    assert moved == {old_small: new_id, old_big: new_id}
    assert migrate_feature_set_ids(store) == {}  # once
    _, done = pending_jobs(store, [new_id, logmel.spec().id])
    assert sorted(done) == sorted(j.video_id for j in jobs)  # nothing to re-extract
    reader = FeatureReader(store)
    assert sorted(reader.featuresets()) == sorted([new_id, logmel.spec().id])
    for job in jobs:
        for name, want in arrays[("face_detect", job.video_id)].items():
            np.testing.assert_array_equal(reader.video(new_id, job.video_id)[name], want)
    assert reader.resolve(old_small) == reader.resolve(old_big) == new_id
    attrs = reader.featuresets()[new_id]
    assert attrs.config == split_config(small.config)[0]
    assert [p for p in verify_store(store) if p.severity == "error"] == []
