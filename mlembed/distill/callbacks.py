"""Trainer callbacks for distillation."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Stop training cleanly once ``minutes`` of training have passed, with a checkpoint when ``checkpoint``
    (a kept work folder, which ``--resume`` continues: the final model is saved either way, and a checkpoint
    that is deleted with the work folder would only cost the seconds and the memory of serialising it).

    Example:
        >>> TimeBudget(0.5).seconds
        30.0
    """

    def __init__(self, minutes: float | None, checkpoint: bool = True):
        self.seconds = None if minutes is None else float(minutes) * 60.0
        self.checkpoint = checkpoint
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
            control.should_save = self.checkpoint
        return control


class TrimHeap(TrainerCallback):
    """Give the heap's freed pages back to the system after every training step and checkpoint: every batch
    has its own tensor sizes, and glibc's heap otherwise keeps the freed ones, so a long batch's transient
    lands on top of what earlier ones left (see :mod:`mlembed.heap`).

    Example:
        >>> TrimHeap().on_step_end(args=None, state=None, control=None)  # the heap is trimmed; training goes on
    """

    def on_step_end(self, args, state, control, **kwargs):
        from mlembed.heap import trim

        trim()

    def on_save(self, args, state, control, **kwargs):
        from mlembed.heap import trim

        trim()  # serialising the checkpoint freed buffers the size of the model
