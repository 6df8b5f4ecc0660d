"""Dev evaluation during distillation: MSE x100 to the teacher and translation matching, both directions.

Uses sentence-transformers' own ``MSEEvaluator`` and ``TranslationEvaluator`` so figures match what
users of that library compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def dev_evaluator(dev: list[dict], teacher: Any, components: np.ndarray | None = None) -> Any:
    """A ``SequentialEvaluator`` over held-out pairs (``src`` English, ``tgt`` translation)."""
    from sentence_transformers.sentence_transformer.evaluation import MSEEvaluator, SequentialEvaluator, TranslationEvaluator

    src = [d["src"] for d in dev]
    tgt = [d["tgt"] for d in dev]
    target_model = teacher
    if components is not None:
        target_model = _ProjectedTeacher(teacher, components)
    return SequentialEvaluator(
        [
            MSEEvaluator(src, tgt, teacher_model=target_model, name="dev", batch_size=64, write_csv=False),
            TranslationEvaluator(src, tgt, name="dev", batch_size=64, write_csv=False),
        ]
    )


class _ProjectedTeacher:
    """The teacher followed by the PCA projection and normalisation, for MSE targets."""

    def __init__(self, teacher: Any, components: np.ndarray):
        self.teacher, self.components = teacher, components

    def encode(self, sentences, **kwargs):
        kwargs.pop("convert_to_numpy", None)
        vectors = np.asarray(self.teacher.encode(sentences, convert_to_numpy=True, **kwargs)) @ self.components
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def run_dev(evaluator: Any, model: Any) -> dict[str, float]:
    """Run the dev evaluator; return ``mse_x100`` (lower is better) and accuracies in percent."""
    scores = evaluator(model)
    out = {}
    for key, value in scores.items():
        name = key.split("dev_", 1)[-1]
        if name == "negative_mse":
            out["mse_x100"] = round(-float(value), 4)
        elif name in ("src2trg_accuracy", "trg2src_accuracy", "mean_accuracy"):
            out[name] = round(100 * float(value), 2)
    return out
