"""The ``bahfs`` command line: one module per noun, all on one Typer app.

Grouped in ``bahfs --help`` by what people do (the modules are imported in that
order): start: ``samples`` (sample-data), ``demo``, ``doctor``; bring data in:
``releases`` (check-release, ingest), ``features`` (extract-video, extract, plan);
look after the store: ``status``, ``stores`` (verify, access, export-baseline),
``participants`` (purge), ``quarantine`` (list, release, bugs); research:
``stats``, ``cues`` (cues evaluate), ``review``, ``models`` (train, evaluate,
predict, personalise), ``zeroshot`` (export, score). Importing this package
registers every command; the heavy imports happen inside each command.
"""

from bahfs.cli import (  # noqa: F401 I001 - each module registers its commands, in order
    samples,
    demo,
    doctor,
    releases,
    features,
    status,
    stores,
    participants,
    quarantine,
    stats,
    cues,
    review,
    models,
    zeroshot,
)
from bahfs.cli.common import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
