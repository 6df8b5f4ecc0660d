"""Trainer callbacks for distillation."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Stop training cleanly once ``minutes`` of training have passed, with a checkpoint when ``checkpoint``
    (a kept work folder, which ``--resume`` continues: the final model is saved either way, and a checkpoint
    that is deleted with the work folder would only cost the seconds and the memory of serialising it).

    Example:
        >>> TimeBudget(0.5).seconds
        30.0
    """

    def __init__(self, minutes: float | None, checkpoint: bool = True, warmup: float = 0.05):
        self.seconds = None if minutes is None else float(minutes) * 60.0
        self.checkpoint = checkpoint
        self.warmup = warmup
        self.stopped = False
        self.total_steps = 0  # the trainer's count (epochs x batches), known at the start of training
        self.elapsed = 0.0  # training seconds at the start of the current step, the same on every rank
        self._start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()
        self.elapsed = 0.0
        self.total_steps = state.max_steps

    def on_step_begin(self, args, state, control, **kwargs):
        from mlembed.distill.distributed import rank_max

        # under torchrun each rank's optimizer applies its own rate: they must agree on the time, or the replicas drift
        if self.seconds is not None:
            self.elapsed = rank_max(time.monotonic() - self._start)

    def progress(self, step: int) -> float:
        """How far the run is, from 0 to 1: the larger of the steps done over the trainer's count and the time
        spent (``elapsed``, as the current step began) over the budget (a budgeted run ends at whichever comes
        first)."""
        done = step / self.total_steps if self.total_steps > 0 else 0.0
        if self.seconds:
            done = max(done, self.elapsed / self.seconds)
        return min(done, 1.0)

    def lr_factor(self, step: int) -> float:
        """The learning rate's share at ``step``: linear warmup over the first ``warmup`` of the run's
        :meth:`progress`, then linear decay to 0 at its end, so a run stopped by its time budget ends annealed
        (the trainer's own schedule spans the epochs, which a budget may cut anywhere). Without a budget it is
        the trainer's linear schedule. A resumed run goes on from its steps' share and decays over its budget.

        Example:
            >>> budget = TimeBudget(None, warmup=0.1)
            >>> budget.total_steps = 100
            >>> [round(budget.lr_factor(s), 3) for s in (0, 5, 10, 55, 100)]
            [0.0, 0.5, 1.0, 0.5, 0.0]
        """
        done = self.progress(step)
        if done < self.warmup:
            return done / self.warmup
        return max(0.0, (1.0 - done) / (1.0 - self.warmup))

    def schedule(self, optimizer: Any) -> Any:
        """A ``LambdaLR`` of ``optimizer`` following :meth:`lr_factor` (the trainer steps it)."""
        from torch.optim.lr_scheduler import LambdaLR

        return LambdaLR(optimizer, self.lr_factor)

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
