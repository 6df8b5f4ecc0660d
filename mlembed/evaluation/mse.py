"""Distillation fit: mean squared error x100 between student(translation) and teacher(English).

As in Reimers & Gurevych (2020) and sentence-transformers' ``MSEEvaluator``:
``((teacher(english) - student(translation)) ** 2).mean() * 100`` on raw (not normalised) vectors.
Lower is better.  The teacher and student must have the same dimension.
"""

from __future__ import annotations

import numpy as np

from mlembed.evaluation.base import EmbeddingCache, TaskResult
from mlembed.evaluation.retrieval import group_pairs


def mse_x100(teacher: np.ndarray, student: np.ndarray) -> float:
    """``((teacher - student) ** 2).mean() * 100``.

    Example:
        >>> round(mse_x100(np.array([[1.0, 0.0]]), np.array([[0.8, 0.2]])), 6)
        4.0
    """
    teacher, student = np.asarray(teacher, np.float64), np.asarray(student, np.float64)
    if teacher.shape != student.shape:
        raise ValueError(
            f"teacher and student embeddings differ in shape: {teacher.shape} vs {student.shape} "
            "(MSE needs a student of the teacher's dimension)"
        )
    return float(((teacher - student) ** 2).mean() * 100)


class MSETask:
    """MSE x100 of student(translation) against teacher(English) per language (``mse:SPEC --teacher T``).

    Args:
        spec: a :func:`mlembed.data.read_pairs` spec with an English side.
        teacher: an :class:`EmbeddingCache` of the teacher model (shared across students).
        limit: at most this many pairs per language pair.

    Example:
        >>> from mlembed.models import load_model
        >>> t = EmbeddingCache(load_model("minilm-en"), show_progress=False)
        >>> task = MSETask("tatoeba:../shared/data/tatoeba:deu", t, limit=50)  # doctest: +SKIP
        >>> task.evaluate(t).scores["de-en"]["mse"]  # teacher vs itself on German  # doctest: +SKIP
    """

    name = "mse"

    def __init__(self, spec: str, teacher: EmbeddingCache, limit: int | None = None):
        self.data_spec, self.teacher, self.limit = spec, teacher, limit
        self.spec = f"mse:{spec}"
        self._groups = None

    def evaluate(self, cache: EmbeddingCache) -> TaskResult:
        from mlembed.data import read_pairs

        if self._groups is None:
            self._groups = group_pairs(read_pairs(self.data_spec))
        scores, sizes = {}, {}
        for g in self._groups:
            src, tgt = g.src[: self.limit], g.tgt[: self.limit]  # tgt is the English side
            scores[g.key] = {"mse": mse_x100(self.teacher.encode(tgt), cache.encode(src))}
            sizes[g.key] = len(src)
        meta = {"pairs": sizes, "teacher": self.teacher.name, "lower_is_better": True}
        return TaskResult(self.name, self.spec, "test", "mse", scores, meta)
