"""Per-frame feature extractors, each registered under a name: ``face`` (CenterFace
detection and alignment, FER expression embedding and emotions), ``face_detect``,
``face_crop`` (aligned face crops, uint8), ``logmel`` (log-mel, energy, voice
activity), ``audio`` (Whisper encoder states),
``words`` (Whisper transcript with word times, MiniLM word vectors on the frames
each word spans), ``prosody`` (openSMILE eGeMAPS descriptors and pauses; the
optional ``opensmile`` package), ``fluency`` (speech rate, pauses, fillers,
repetitions and corrections from the words and their times; filled pauses from the
audio), ``speech_model`` (a Hugging Face wav2vec2-family model by path on ONNX
Runtime), ``vggish`` (an ONNX VGGish by path, one 0.96 s patch per frame) and
``behaviour`` (head pose, gaze, eyes, brows, mouth and upper
body from MediaPipe's face mesh, iris and pose models). Decoding
(:mod:`extractors.decode`), the extractor contract
(:mod:`extractors.base`), model locations and loaders (:mod:`extractors.models`)
and ONNX Runtime sessions (:mod:`extractors.runtime`) live beside them.

Importing this package registers the extractors it holds, and those installed
packages declare in the ``bahfs.extractors`` entry-point group
(:mod:`extractors.plugins`).
"""

from extractors import audio as _audio  # noqa: F401 - registers "logmel"
from extractors import audio_embed as _audio_embed  # noqa: F401 - registers "audio"
from extractors import behaviour as _behaviour  # noqa: F401 - registers "behaviour"
from extractors import face as _face  # noqa: F401 - registers "face"
from extractors import face_crop as _face_crop  # noqa: F401 - registers "face_crop"
from extractors import face_detect as _face_detect  # noqa: F401 - registers "face_detect"
from extractors import fluency as _fluency  # noqa: F401 - registers "fluency"
from extractors import prosody as _prosody  # noqa: F401 - registers "prosody"
from extractors import speech as _speech  # noqa: F401 - registers "words"
from extractors import speech_model as _speech_model  # noqa: F401 - registers "speech_model"
from extractors import vggish as _vggish  # noqa: F401 - registers "vggish"
from extractors.base import REGISTRY, DecodedVideo, Extractor, get_extractor, register
from extractors.plugins import load_plugins

load_plugins()  # extractors of installed packages (entry points bahfs.extractors)

#: What `bahfs extract-video` runs unless told otherwise (face includes detection).
DEFAULT_EXTRACTORS = ("face", "logmel", "audio", "words")

__all__ = ["DEFAULT_EXTRACTORS", "REGISTRY", "DecodedVideo", "Extractor", "get_extractor",
           "register"]
