"""A data collator that attaches teacher embeddings from the memory-mapped teacher cache.

The training dataset holds only text and the row of the English sentence's teacher embedding, so
epochs reuse the cached targets instead of re-running the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

ROW_COLUMN = "teacher_row"


@dataclass
class TeacherTargetCollator(SentenceTransformerDataCollator):
    """Tokenise the text columns and add ``label`` = teacher vectors (optionally PCA-projected).

    Example:
        >>> from mlembed.models import load_model
        >>> m = load_model("minilm-en")
        >>> c = TeacherTargetCollator(preprocess_fn=m.preprocess, targets=np.eye(3, 384, dtype=np.float32))
        >>> batch = c([{"english": "Hi", "non_english": "Hallo", "teacher_row": 2}])
        >>> batch["label"].shape, int(batch["label"][0, 2])
        (torch.Size([1, 384]), 1)
    """

    targets: Any = None
    components: np.ndarray | None = None
    prompt: str | None = None  # prepended to every text, as the student's encode() does (e5: "query: ")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = np.array([f[ROW_COLUMN] for f in features], dtype=np.int64)
        pre = self.prompt or ""
        batch = super().__call__([{k: pre + v for k, v in f.items() if k != ROW_COLUMN} for f in features])
        labels = np.asarray(self.targets[rows], dtype=np.float32)
        if self.components is not None:
            labels = labels @ self.components
            labels /= np.maximum(np.linalg.norm(labels, axis=1, keepdims=True), 1e-12)
        batch["label"] = torch.from_numpy(labels)
        return batch
