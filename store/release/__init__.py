"""Reading a BAH release (the real one, in any variant in circulation, or a generated
sample) into typed tables: :func:`store.release.reader.read_release`.

Importing this package imports nothing else: the codebook's constants come without
pydantic or polars.
"""
