"""ffprobe: the frame size as displayed, rotation included."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from store.media import display_size, probe_video, rotation_of


@pytest.mark.parametrize("stream,deg", [
    ({}, 0),
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 90),
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 270),
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -180}]}, 180),
    ({"side_data_list": [{"side_data_type": "Other"}, {"rotation": 90.0}]}, 90),
    ({"tags": {"rotate": "90"}}, 270),  # legacy tag: clockwise
    ({"tags": {"rotate": "270"}}, 90),
    ({"tags": {"rotate": "sideways"}}, 0),
    ({"tags": {"rotate": "90"}, "side_data_list": [{"rotation": -90}]}, 270),  # matrix wins
])
def test_rotation_from_the_display_matrix_or_the_legacy_tag(stream: dict[str, Any],
                                                            deg: int) -> None:
    assert rotation_of(stream) == deg


@pytest.mark.parametrize("deg,size", [(0, (160, 96)), (90, (96, 160)), (180, (160, 96)),
                                      (270, (96, 160)), (45, (160, 96))])
def test_display_size_swaps_for_a_quarter_turn(deg: int, size: tuple[int, int]) -> None:
    assert display_size(160, 96, deg) == size


def test_probe_reports_the_displayed_size_of_a_rotated_file(tmp_path: Path) -> None:
    plain, rot = tmp_path / "plain.mp4", tmp_path / "rot.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x96:rate=10", "-t", "1", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(plain)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(rot)], check=True)
    a, b = probe_video(plain), probe_video(rot)
    assert (a.width, a.height, a.rotation) == (160, 96, 0)
    assert (b.width, b.height, b.rotation) == (96, 160, 90)
    assert b.n_frames == a.n_frames == 10


def test_packets_an_edit_list_discards_are_not_counted(tmp_path: Path) -> None:
    """A file cut without re-encoding keeps the packets before the cut (back to the
    keyframe) behind an edit list; they decode to no frame, so they are no frames."""
    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-t", "3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(whole)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.55", "-i", str(whole), "-c", "copy",
                    str(cut)], check=True)
    decoded = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                              "stream=nb_read_frames", "-of", "csv=p=0", str(cut)],
                             capture_output=True, text=True, check=True).stdout
    assert probe_video(whole).n_frames == 30
    assert probe_video(cut).n_frames == int(decoded) == 24
