"""The ``bahfs`` command line: one module per noun, all on one Typer app.

``samples`` (sample-data), ``releases`` (check-release, ingest), ``stats``,
``quarantine`` (list, release, bugs),
``participants`` (purge), ``cues`` (cues evaluate),
``stores`` (verify, export-baseline), ``features``
(extract-video, extract), ``models`` (train, evaluate, predict, personalise), ``zeroshot``
(export, score), ``review`` and ``demo``. Importing
this package registers every command; the heavy imports happen inside each
command.
"""

from bahfs.cli import (  # noqa: F401 - each module registers its commands
    cues,
    demo,
    features,
    models,
    participants,
    quarantine,
    releases,
    review,
    samples,
    stats,
    stores,
    zeroshot,
)
from bahfs.cli.common import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
