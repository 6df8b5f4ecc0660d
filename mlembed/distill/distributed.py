"""Distillation under ``torchrun``: several processes, one student (DDP through accelerate; gloo on CPU).

torchrun starts the processes and sets ``RANK`` / ``WORLD_SIZE``; the sentence-transformers trainer
(accelerate) wraps the student in DDP and gives each process every N-th batch of the same batch
sequence a single process would see, so a step consumes N consecutive batches. mlembed adds only what
the trainer does not own: rank 0 alone prepares the run (samples pairs, fills the teacher cache, builds the
initial student) while the others wait, every rank stops at the same step when the time budget ends,
and rank 0 alone evaluates and saves the model.
"""

from __future__ import annotations

import os
from datetime import timedelta

#: preparation (teacher encoding of every pair) happens while the other ranks wait at a barrier
BARRIER_TIMEOUT = timedelta(hours=12)


def world_size() -> int:
    """Processes in this run (``$WORLD_SIZE`` set by torchrun, else 1).

    Example:
        >>> world_size() >= 1
        True
    """
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """True on rank 0 (and in a plain single-process run).

    Example:
        >>> is_main() == (int(os.environ.get("RANK", "0")) == 0)
        True
    """
    return int(os.environ.get("RANK", "0")) == 0


def init() -> None:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU); a no-op for one process."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=BARRIER_TIMEOUT)


def barrier() -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (one small all-reduce; plain ``flag`` for one process).

    Example:
        >>> any_rank(True)
        True
    """
    return bool(rank_max(float(flag)))


def rank_max(value: float) -> float:
    """The largest ``value`` over the ranks, on every rank (one small all-reduce; ``value`` for one process), so
    that what each rank measures on its own clock (the time spent) steers them all alike.

    Example:
        >>> rank_max(2.5)
        2.5
    """
    if world_size() == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())
