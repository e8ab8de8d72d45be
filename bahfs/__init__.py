"""bahfs: an offline feature store for multimodal behaviour videos (BAH).

This package is the door: the command line (:mod:`bahfs.cli`, one module per noun),
the demo, and the sample-data generator (:mod:`bahfs.sample`).
"""

from store import __version__

__all__ = ["__version__"]
