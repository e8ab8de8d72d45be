"""One video of a sample dataset: who answers which question, under what file name."""

from __future__ import annotations

from dataclasses import dataclass

from bahfs.sample.render import Appearance
from bahfs.sample.script import VideoPlan


@dataclass(frozen=True)
class VideoJob:
    """One video to render."""

    pid: str
    name: str  # file name, e.g. 82553_Question_1_2024-03-05 10-00-17_Video.mp4
    plan: VideoPlan
    appearance: Appearance
    seed: int
