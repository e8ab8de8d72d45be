"""Extraction plans: names or a YAML file of feature sets with their options, checked
before anything runs; a feature set's own name reaches its id and the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractors.audio import LogMelConfig
from extractors.face import FaceConfig
from extractors.pipeline import extract_all
from extractors.plan import as_plan, plan_from_names, plan_to_json, read_plan
from store.errors import ConfigError
from store.one_video import describe_video, one_video_store, publish_video
from store.reader import FeatureReader


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_a_plan_file_names_feature_sets_and_their_options(tmp_path: Path) -> None:
    plan = read_plan(_write(tmp_path, """
logmel: {}
logmel_fine:
  extractor: logmel
  n_mels: 96
face:
  detector: {threshold: 0.6}
"""))
    assert [(e.name, e.extractor) for e in plan] == [
        ("logmel", "logmel"), ("logmel_fine", "logmel"), ("face", "face")]
    assert plan[1].config() == LogMelConfig(n_mels=96)
    face = plan[2].config()
    assert isinstance(face, FaceConfig) and face.detector.threshold == 0.6
    assert as_plan(plan_to_json(plan)) == plan and hash(plan)  # travels, keys a cache
    assert as_plan(["logmel"]) == plan_from_names(["logmel"]) == plan[:1]


@pytest.mark.parametrize(("text", "match"), [
    ("face:\n  modle_path: x\n", r"unknown option 'modle_path'.*model_path"),
    ("face:\n  detector: {treshold: 2}\n", r"face\.detector: unknown option 'treshold'"),
    ("logmel:\n  n_mels: lots\n", r"n_mels: Input should be a valid integer.*plan\.yaml"),
    ("mystery: {}\n", r"unknown extractor 'mystery'"),
    ("Face!: {extractor: face}\n", r"bad feature set name 'Face!'"),
    ("- face\n", r"not a mapping of feature sets.*plan\.yaml"),
    ("face: [1\n", r"unreadable YAML.*plan\.yaml"),
    ("logmel: 3\n", r"has int options"),
])
def test_bad_plans_fail_before_anything_runs(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_plan(_write(tmp_path, text))


def test_the_feature_set_name_reaches_ids_and_files(media: dict[str, tuple[Path, object]],
                                                    tmp_path: Path) -> None:
    plan = read_plan(_write(tmp_path, "logmel: {}\nlogmel_fine: {extractor: logmel, "
                                      "n_mels: 96}\n"))
    video = describe_video(media["speech24"][0])
    a, b = extract_all(video.file, [e.build() for e in plan], video_id=video.video_id,
                       participant_id=video.participant_id)
    assert a.spec.id.startswith("logmel-") and b.spec.id.startswith("logmel_fine-")
    assert b.spec.extractor == "logmel" and b.arrays["logmel"].shape[1] == 96
    out = tmp_path / "v.zarr"
    publish_video(one_video_store(out, video), video, [a, b])
    reader = FeatureReader(out)
    fine, plain = reader.resolve("logmel_fine"), reader.resolve("logmel")
    assert reader.featuresets()[fine].label == "logmel_fine"
    assert reader.video(fine, video.video_id)["logmel"].shape[1] == 96
    assert reader.video(plain, video.video_id)["logmel"].shape[1] == 64
