"""Reading a BAH release (the real one or a generated sample) into typed records."""

from bahfs.release.reader import Release, read_release

__all__ = ["Release", "read_release"]
