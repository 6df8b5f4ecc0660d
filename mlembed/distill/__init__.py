"""Distillation: make an English teacher multilingual (Reimers & Gurevych, 2020).

The run, as its data flows (:func:`distill` in :mod:`.pipeline`): options (:mod:`.config`) -> parallel pairs
(:mod:`mlembed.data`), balanced (:mod:`.sampling`), teacher targets (:class:`mlembed.teacher_cache.TeacherCache`)
and the initial student (:mod:`.student`: map :mod:`.head`, vocabulary :mod:`mlembed.vocab`, cut :mod:`.layers`,
PCA :mod:`.pca`), all prepared into the work folder (:mod:`.prepare`) -> the sentence-transformers trainer with
``losses.MSELoss`` (:mod:`.training`) -> a plain sentence-transformers folder with a card (:mod:`.card`), whose
files :mod:`.run_folder` owns.
"""

from mlembed.distill.config import DistillConfig
from mlembed.distill.pipeline import distill
from mlembed.distill.run_folder import DistillResult

__all__ = ["DistillConfig", "DistillResult", "distill"]
