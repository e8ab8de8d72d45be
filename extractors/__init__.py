"""Per-frame feature extractors (issue 3, in progress: decoding, the contract, log-mel,
CenterFace detection and alignment; face/audio embeddings and speech still to come).

Importing this package registers the extractors it holds.
"""

from extractors import audio as _audio  # noqa: F401 - registers "logmel"
from extractors import audio_embed as _audio_embed  # noqa: F401 - registers "audio"
from extractors import face as _face  # noqa: F401 - registers "face"
from extractors import face_detect as _face_detect  # noqa: F401 - registers "face_detect"
from extractors import speech as _speech  # noqa: F401 - registers "words"
from extractors.base import REGISTRY, DecodedVideo, Extractor, get_extractor, register

#: What `bahfs extract-video` runs unless told otherwise (face includes detection).
DEFAULT_EXTRACTORS = ("face", "logmel", "audio", "words")

__all__ = ["DEFAULT_EXTRACTORS", "REGISTRY", "DecodedVideo", "Extractor", "get_extractor",
           "register"]
