from pathlib import Path

import pytest

from store.errors import DatasetLayoutError, UnsafeYamlError
from store.release.yamlio import load_yaml


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "f.yml"
    p.write_text(text)
    return p


def test_python_tuple_tag_loads_as_tuple(tmp_path: Path) -> None:
    p = _write(tmp_path, "timestamp: !!python/tuple\n- 0.5\n- 2.25\n")
    assert load_yaml(p) == {"timestamp": (0.5, 2.25)}


@pytest.mark.parametrize("payload", [
    "x: !!python/object:os.system {}\n",
    "x: !!python/object/apply:os.system ['echo pwned']\n",
    "x: !!python/name:os.system\n",
    "x: !!python/module:os\n",
    "x: !custom 3\n",
])
def test_code_tags_are_refused_with_the_file_named(tmp_path: Path, payload: str) -> None:
    p = _write(tmp_path, payload)
    with pytest.raises(UnsafeYamlError) as info:
        load_yaml(p)
    assert str(p) in str(info.value)
    assert "!!python/tuple" in str(info.value)


def test_invalid_yaml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "a: [1, 2\n")
    with pytest.raises(DatasetLayoutError, match="invalid YAML") as info:
        load_yaml(p)
    assert str(p) in str(info.value)
    with pytest.raises(DatasetLayoutError, match="not found"):
        load_yaml(tmp_path / "nope.yml")


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # nine levels of nine aliases: 9**9 (387 million) strings once walked
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    p = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(UnsafeYamlError, match="aliases are not allowed") as info:
        load_yaml(p)
    assert str(p) in str(info.value) and "line" in str(info.value)


def test_ampersands_in_text_are_not_anchors(tmp_path: Path) -> None:
    p = _write(tmp_path, "text: R&D, rock & roll, Q&A\nkey: 'a &b'\n")
    assert load_yaml(p) == {"text": "R&D, rock & roll, Q&A", "key": "a &b"}
    lone = _write(tmp_path, "x: &only 1\ny: 2\n")  # an anchor never used: no alias
    assert load_yaml(lone) == {"x": 1, "y": 2}


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(DatasetLayoutError, match="invalid YAML") as info:
        load_yaml(p)
    assert "line" in str(info.value) and "column" in str(info.value)


def test_a_video_listed_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("Videos/1/a.mp4:\n  x: 1\nVideos/1/b.mp4:\n  x: 2\nVideos/1/a.mp4:\n  x: 3\n")
    with pytest.raises(DatasetLayoutError, match=r"'Videos/1/a\.mp4' is listed twice "
                                                 r"\(lines 1 and 5\).*a\.yaml"):
        load_yaml(path)
