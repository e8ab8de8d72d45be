"""Names fixed by the BAH release: files, keys, cue codebook, questions."""

from __future__ import annotations

from typing import Final

VIDEOS_DIR: Final = "Videos"
TRANSCRIPTION_DIR: Final = "transcription"
SPLIT_DIR: Final = "split"
SPLIT_FRAMES_DIR: Final = "split-frames"
FACES_DIR: Final = "cropped-aligned-faces"
VIDEO_LABELS_CSV: Final = "bah-video.csv"
META_YML: Final = "meta_data.yml"
ANNOTATIONS_YAML: Final = "video_annotation_transcript.yaml"
#: earlier spellings still in circulation
OFFICIAL_ANNOTATIONS_YAML: Final = "video_annotation.yaml"  # the official code reads this
CHALLENGE_ANNOTATIONS_YAML: Final = "annotation.yml"  # the 2025 challenge, four keys
OFFICIAL_SPLIT_DIR: Final = "dataset-splits/video-level/BAH_DB/split-0"
OFFICIAL_FRAME_SPLIT_DIR: Final = "dataset-splits/frame-level/BAH_DB/split-0"
CLASS_ID_YAML: Final = "class_id.yaml"
#: class names of class_id.yaml -> label
CLASS_IDS: Final = {"With A-H": 1, "No A-H": 0}

#: split file stem -> canonical split name
SPLIT_FILES: Final = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                      "test": "test"}

META_KEYS: Final = (
    "Age", "Age range", "Birth country", "Canada province", "Ethnicity",
    "Ethnicity simplified", "Gender", "Is student", "Use in challenges",
    "Use in publications",
)

#: the keys every variant of the annotation file carries
CORE_KEYS: Final = ("global_ah", "fr_detailed_ah", "time_detailed_ah", "frame_annotation")
#: the keys of video_annotation_transcript.yaml
ANNOTATION_KEYS: Final = (
    "global_ah", "annotator_id", "certainty_ah", "fr_detailed_ah", "time_detailed_ah",
    "all_cues", "frame_annotation", "transcript",
)

CUE_MODALITY_KEYS: Final = ("facial", "language", "audio", "body", "inconsistencies")

CODEBOOK: Final[dict[str, tuple[str, ...]]] = {
    "facial": ("Close 2", "Close 1", "Squint", "Frown", "Eyebrow", "Gaze", "Eye roll", "Open",
               "Smile", "Pout", "Lip press", "Hanging", "Mouth", "Wrinkle Chin", "Nose"),
    "language": ("Filler sound", "Filler word", "Hedging", "Correction", "Repetition",
                 "Positive", "Negative", "Excuse", "Success", "Fail", "Cap", "No cap", "Mot",
                 "No mot", "Opp", "No opp"),
    "audio": ("Pause", "Cut words", "Slow", "Fast", "Volume", "Shaky voice", "Breath", "Click",
              "Laugh", "Stuttering"),
    "body": ("Look away", "Shake", "Tilt", "Throw", "Sigh", "Nod", "Shrug", "Hands", "Posture",
             "Scratch", "Restless"),
    "inconsistency": ("FL", "FA", "FB", "LA", "LB", "AB"),
}

#: Paraphrases of the seven BAH interview questions (behaviour change); the generator
#: answers these. The real wording is in the release's documentation.
QUESTIONS: Final = (
    "What is a health behaviour you would like to change?",
    "Why would you like to change it?",
    "What makes it hard for you to change it?",
    "How confident are you that you can change it?",
    "What have you tried before?",
    "What would help you to change?",
    "What will you do in the next week?",
)
