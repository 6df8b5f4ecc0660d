"""Distillation: make an English teacher multilingual (Reimers & Gurevych, 2020).

Data flows: parallel pairs (:mod:`mlembed.data`) -> balanced sample (:mod:`.sampling`) -> teacher
embeddings of the English side (:class:`mlembed.teacher_cache.TeacherCache`) -> student
(:mod:`mlembed.vocab` extended vocabulary, optional PCA :mod:`.pca`) -> sentence-transformers trainer
with ``losses.MSELoss`` (:mod:`.train`) -> a plain sentence-transformers model folder with a card
(:mod:`.card`).
"""

from mlembed.distill.train import DistillConfig, DistillResult, distill

__all__ = ["DistillConfig", "DistillResult", "distill"]
