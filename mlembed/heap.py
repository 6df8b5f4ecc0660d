"""Giving freed native memory back to the operating system (glibc's ``malloc_trim``).

glibc serves a request above its *mmap threshold* from a fresh mapping, returned to the system on free, and
anything smaller from its heap, which keeps what is freed. The threshold is dynamic: each large block freed
raises it to that block's size (up to 32 MB), so once a forward pass has freed its tensors, the next ones of
other sizes (each batch has its own length) come from the heap and its freed fragments add up: a batch of
long sequences then peaks on top of what earlier ones left. Trimming after every training step took the main
job's peak from 3.26 GB (trimmed every 30 s) to 3.01 GB in ``benchmarks/main_job.py`` (122 steps in its
5-minute budget, against 120). A busy server creeps up the same way. Fixing the threshold instead
(``mallopt``) kept RSS flat but made training steps much slower: every tensor then costs fresh page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators behave otherwise
        return None


def trim() -> bool:
    """Return the heap's free pages to the system now; False where the C library is not glibc.

    Example:
        >>> trim()  # doctest: +SKIP
        True
    """
    release = _malloc_trim()
    if release is None:
        return False
    release(0)
    return True


def heap_trimmer(every_s: float) -> Callable[[], None]:
    """A function that calls :func:`trim` at most every ``every_s`` seconds: cheap to call after every request
    or training step (each trim costs the pages it released a fault when they are used again).

    Example:
        >>> maybe_trim = heap_trimmer(5.0)
        >>> maybe_trim()  # the first call within 5 s of its creation does nothing
    """
    last = [time.monotonic()]

    def maybe_trim() -> None:
        if time.monotonic() - last[0] >= every_s:
            trim()
            last[0] = time.monotonic()

    return maybe_trim
