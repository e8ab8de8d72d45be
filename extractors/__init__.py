"""Per-frame feature extractors (issue 3, in progress: decoding, the contract, log-mel).

Importing this package registers the extractors it holds.
"""

from extractors import audio as _audio  # noqa: F401 - registers "logmel"
from extractors.base import REGISTRY, DecodedVideo, Extractor, get_extractor, register

__all__ = ["REGISTRY", "DecodedVideo", "Extractor", "get_extractor", "register"]
