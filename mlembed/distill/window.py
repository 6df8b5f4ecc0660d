"""A distilled student's two lengths: it trains on short pairs (``--max-seq-length``, 64 by default, which
keeps training fast) and reads at inference as far as its start does (e5-small 512 tokens, the teacher 256).
The plan records both; the saved folder loads with the inference window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlembed.files import atomic_open


def start_window(model: Any, source: str) -> int | None:
    """The tokens a student's start reads at inference: its own ``max_seq_length`` (e5-small 512, the
    teacher 256), or for a folder mlembed distilled before, the window recorded in its ``mlembed.json``
    (folders saved before that was recorded carried their training length: the tokenizer's limit then).

    Example:
        >>> from mlembed.models import load_model
        >>> start_window(load_model("minilm-en"), "minilm-en")
        256
    """
    window = getattr(model, "max_seq_length", None)
    saved = Path(source) / "mlembed.json"
    previous = json.loads(saved.read_text())["plan"] if source != "auto" and saved.is_file() else None
    if previous is None:
        return window
    recorded = previous.get("max_seq_length")
    if isinstance(recorded, dict) and recorded.get("inference"):
        return int(recorded["inference"])
    limit = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
    return int(limit) if isinstance(limit, int) and limit < 100_000 else window


def inference_window(plan: dict) -> int:
    """The window a distilled student reads at inference (plans written before it was recorded: the
    training length, as those students were saved).

    Example:
        >>> inference_window({"config": {"max_seq_length": 64}, "max_seq_length": {"training": 64, "inference": 512}})
        512
    """
    recorded = plan.get("max_seq_length")
    if isinstance(recorded, dict) and recorded.get("inference"):
        return int(recorded["inference"])
    return int(plan["config"]["max_seq_length"])


def set_saved_window(folder: Path, window: int) -> None:
    """Set the ``max_seq_length`` a saved sentence-transformers folder loads with (its
    ``sentence_bert_config.json``), whatever length it was trained at."""
    config = Path(folder) / "sentence_bert_config.json"
    settings = json.loads(config.read_text()) if config.is_file() else {}
    settings["max_seq_length"] = int(window)
    with atomic_open(config) as fh:
        json.dump(settings, fh, indent=2)
