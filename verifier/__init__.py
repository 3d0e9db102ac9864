"""nverify: prove that machine code meets its spec for every input, or say why not."""

from __future__ import annotations

from .verdict import VERSION as __version__

__all__ = ["__version__", "prove"]


def prove(blob_path: str, spec: str, options=None, progress=None):
    """Prove `blob_path` against `spec`; see `verifier.pipeline.prove`."""
    from .pipeline import Options
    from .pipeline import prove as _prove

    return _prove(blob_path, spec, options or Options(), progress)
