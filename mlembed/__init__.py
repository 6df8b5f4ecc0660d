"""mlembed: make English sentence embeddings multilingual, then evaluate, index and mine with them.

The data flows: parallel data (:mod:`mlembed.data`) -> teacher cache -> distillation -> a student model
(:mod:`mlembed.models`); sentences -> :func:`mlembed.encode` -> FAISS index -> search / mining; translated
documents -> :func:`mlembed.align` -> sentence beads;
evaluation sits on top.  Heavy libraries (torch, sentence-transformers, faiss) are imported lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "align", "encode", "load_model", "read_pairs"]


def __getattr__(name: str) -> Any:  # lazy re-exports keep `import mlembed` and `mlembed --help` fast
    if name == "encode":
        from mlembed.encoding import encode

        return encode
    if name == "load_model":
        from mlembed.models import load_model

        return load_model
    if name == "align":
        from mlembed.aligner import align

        return align
    if name == "read_pairs":
        from mlembed.data import read_pairs

        return read_pairs
    raise AttributeError(f"module 'mlembed' has no attribute {name!r}")
