"""bahfs: an offline feature store for multimodal behaviour videos (BAH)."""

__version__ = "0.1.0"
