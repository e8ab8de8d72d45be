"""Reading a release: every layout mismatch fails naming the file, entry and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from store.errors import DatasetLayoutError, PathEscapeError, UnsafeYamlError
from store.release import codebook as cb
from store.release.reader import read_release


class _PlainDumper(yaml.SafeDumper):
    """Writes an entry used twice as two copies, as the release does (no aliases:
    bahfs refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _edit_annotations(root: Path, edit: Any) -> Path:
    path = root / cb.ANNOTATIONS_YAML
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.dump(data, Dumper=_PlainDumper, sort_keys=False))
    return path


def _first(data: dict[str, Any], with_segments: bool = True) -> tuple[str, dict[str, Any]]:
    return next((k, v) for k, v in data.items() if bool(v["fr_detailed_ah"]) == with_segments)


def test_reads_generated_release(sample_release: Path) -> None:
    rel = read_release(sample_release)
    assert rel.videos.height == len(yaml.safe_load(
        (sample_release / cb.ANNOTATIONS_YAML).read_text()))
    assert set(rel.frame_base.values()) == {0}  # the release numbers frames from 0
    assert rel.frame_labels["frame"].min() == 0
    assert set(rel.cues["modality"].unique()) <= set(cb.CODEBOOK)
    assert rel.transcripts.height >= rel.videos.height


def test_missing_key_names_file_entry_and_key(mutable_release: Path) -> None:
    entry: list[str] = []

    def drop(data: dict[str, Any]) -> None:
        key, ann = _first(data)
        entry.append(key)
        del ann["fr_detailed_ah"]
    path = _edit_annotations(mutable_release, drop)
    with pytest.raises(DatasetLayoutError) as info:
        read_release(mutable_release)
    msg = str(info.value)
    assert str(path) in msg and entry[0] in msg and "fr_detailed_ah" in msg


def test_missing_meta_key_names_participant(mutable_release: Path) -> None:
    path = mutable_release / cb.META_YML
    meta = yaml.safe_load(path.read_text())
    del meta["82554"]["Use in publications"]
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    with pytest.raises(DatasetLayoutError, match="Use in publications") as info:
        read_release(mutable_release)
    assert "82554" in str(info.value) and str(path) in str(info.value)


def test_unknown_cue_modality(mutable_release: Path) -> None:
    _edit_annotations(mutable_release,
                      lambda d: _first(d)[1]["all_cues"][0].update({"gesture": ["Wave"]}))
    with pytest.raises(DatasetLayoutError, match="unknown cue modality 'gesture'"):
        read_release(mutable_release)


def test_unknown_cue_name(mutable_release: Path) -> None:
    _edit_annotations(mutable_release,
                      lambda d: _first(d)[1]["all_cues"][0].update({"audio": ["Whistle"]}))
    with pytest.raises(DatasetLayoutError, match="unknown audio cue 'Whistle'"):
        read_release(mutable_release)


def test_segment_outside_the_video(mutable_release: Path) -> None:
    def stretch(data: dict[str, Any]) -> None:
        _, ann = _first(data)
        ann["fr_detailed_ah"][0][1] = len(ann["frame_annotation"]) + 5
    _edit_annotations(mutable_release, stretch)
    with pytest.raises(DatasetLayoutError, match="outside the video"):
        read_release(mutable_release)


def test_frame_labels_must_agree_with_segments(mutable_release: Path) -> None:
    def flip(data: dict[str, Any]) -> None:
        _, ann = _first(data, with_segments=False)
        ann["frame_annotation"][3][1] = 1
    _edit_annotations(mutable_release, flip)
    with pytest.raises(DatasetLayoutError, match="frame 3 labelled 1 but segments say 0"):
        read_release(mutable_release)


@pytest.mark.parametrize("bad", ["../../etc/82553/Visite_1/82553_Question_1_x_Video.mp4",
                                 "Videos/82553/../../82553_Question_1_x_Video.mp4",
                                 "/etc/82553/Visite_1/82553_Question_1_x_Video.mp4"])
def test_path_traversal_is_refused(mutable_release: Path, bad: str) -> None:
    def inject(data: dict[str, Any]) -> None:
        data[bad] = _first(data)[1]
    _edit_annotations(mutable_release, inject)
    with pytest.raises(PathEscapeError, match="leaves the release") as info:
        read_release(mutable_release)
    assert bad in str(info.value)


def test_symlink_escape_is_refused(mutable_release: Path, tmp_path: Path) -> None:
    # a transcription folder that is a symlink out of the dataset
    rel = next(iter(yaml.safe_load((mutable_release / cb.ANNOTATIONS_YAML).read_text())))
    folder = mutable_release / cb.TRANSCRIPTION_DIR / rel  # named like the video
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="escapes the dataset root"):
        read_release(mutable_release)


def test_python_object_payload_is_refused(mutable_release: Path) -> None:
    path = mutable_release / cb.ANNOTATIONS_YAML
    text = path.read_text()
    payload = "annotator_id: !!python/object/apply:os.system ['touch /tmp/bahfs-pwned']"
    path.write_text(text.replace("annotator_id: A1", payload, 1))
    with pytest.raises(UnsafeYamlError) as info:
        read_release(mutable_release)
    assert str(path) in str(info.value)
    assert not Path("/tmp/bahfs-pwned").exists()


def test_label_disagreement_between_files(mutable_release: Path) -> None:
    path = mutable_release / cb.VIDEO_LABELS_CSV
    lines = path.read_text().splitlines()
    assert lines[0] == "video-path,class"  # the header row
    first = lines[1].rsplit(",", 1)
    lines[1] = f"{first[0]},{1 - int(first[1])}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetLayoutError, match="global_ah"):
        read_release(mutable_release)


def test_missing_file_is_named(mutable_release: Path) -> None:
    (mutable_release / cb.META_YML).unlink()
    with pytest.raises(DatasetLayoutError, match=r"missing meta_data\.yml"):
        read_release(mutable_release)


def test_bad_video_name(mutable_release: Path) -> None:
    _edit_annotations(mutable_release,
                      lambda d: d.update({"Videos/82553/Visite_1/clip.mp4": _first(d)[1]}))
    with pytest.raises(DatasetLayoutError, match="does not follow the release naming"):
        read_release(mutable_release)


def test_participant_in_two_splits(mutable_release: Path) -> None:
    split_dir = mutable_release / cb.SPLIT_DIR
    files = {f: f.read_text().splitlines() for f in sorted(split_dir.glob("*.txt"))}
    src, pid = next((f, ln.split("/")[1]) for f, lines in files.items() for ln in lines
                    if sum(x.startswith(f"Videos/{ln.split('/')[1]}/") for x in lines) >= 2)
    dst = next(f for f in files if f != src)
    moved = next(ln for ln in files[src] if ln.startswith(f"Videos/{pid}/"))
    src.write_text("\n".join(ln for ln in files[src] if ln != moved) + "\n")
    dst.write_text("\n".join([*files[dst], moved]) + "\n")
    with pytest.raises(DatasetLayoutError, match="several splits") as info:
        read_release(mutable_release)
    assert pid in str(info.value)


def test_one_video_under_two_spellings_is_refused(mutable_release: Path) -> None:
    import copy

    def twice(data: dict[str, Any]) -> None:
        key, ann = _first(data)
        data[key.replace("Videos/", "", 1)] = copy.deepcopy(ann)
    _edit_annotations(mutable_release, twice)
    with pytest.raises(DatasetLayoutError, match=r"are the same video") as info:
        read_release(mutable_release)
    assert info.value.video is not None and "__Q" in info.value.video
