"""Trainer callbacks for distillation."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Stop training cleanly (and save a checkpoint) once ``minutes`` of training have passed.

    Example:
        >>> TimeBudget(0.5).seconds
        30.0
    """

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else float(minutes) * 60.0
        self.stopped = False
        self._start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        from mlembed.distill.distributed import any_rank

        # under torchrun every rank must stop at the same step (else the others wait in DDP's all-reduce)
        if self.seconds is not None and any_rank(time.monotonic() - self._start >= self.seconds):
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
        return control
