"""A data collator that attaches teacher embeddings read from the teacher cache's file, a batch at a time.

The training dataset holds only text and the row of the English sentence's teacher embedding, so
epochs reuse the cached targets instead of re-running the teacher. With an ``anchor`` (self-distillation),
the non-English side's target is a blend of the teacher's vector and the frozen start's own vector of that
sentence, ``(1 - anchor) * teacher(en) + anchor * start(tgt)``: the student moves towards the teacher only as
far as it keeps what the start knew (MSE to a blend equals the weighted sum of both MSEs, up to a constant).
A row of ``target_row`` (a smaller copy of a multilingual model, ``--layers``) makes the non-English side's
target the teacher's own vector of that sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from mlembed.arrays import take_rows

ROW_COLUMN = "teacher_row"
TARGET_COLUMN = "target_row"  # optional: the cache row of the non-English sentence's own teacher vector


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
    anchor_model: Any = None  # the frozen start (a SentenceTransformer); with anchor > 0
    anchor: float = 0.0
    bf16: bool = False  # the anchor's forward under bf16 autocast, as training's

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = np.array([f[ROW_COLUMN] for f in features], dtype=np.int64)
        pre = self.prompt or ""
        rows_of = (ROW_COLUMN, TARGET_COLUMN)
        batch = super().__call__([{k: pre + v for k, v in f.items() if k not in rows_of} for f in features])
        batch["label"] = self._labels(rows)
        if TARGET_COLUMN in features[0]:  # per-column targets: each side's own vector
            own = self._labels(np.array([f[TARGET_COLUMN] for f in features], dtype=np.int64))
            batch["label"] = torch.stack([batch["label"], own], dim=1)
            return batch
        if self.anchor and self.anchor_model is not None:  # per-column targets: English, then the blend
            prefix = "non_english_"
            inputs = {k[len(prefix) :]: v for k, v in batch.items() if k.startswith(prefix)}
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                start = self.anchor_model(inputs)["sentence_embedding"].float()
            blend = (1 - self.anchor) * batch["label"] + self.anchor * start
            batch["label"] = torch.stack([batch["label"], blend], dim=1)
        return batch

    def _labels(self, rows: np.ndarray) -> torch.Tensor:
        labels = take_rows(self.targets, rows)  # (read, not mapped: the cache file may be far larger than the run)
        if self.components is not None:
            labels = labels @ self.components
            labels /= np.maximum(np.linalg.norm(labels, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy(labels)
