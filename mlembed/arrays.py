"""Embedding arrays on disk: open a ``.npy`` as a memmap, read row blocks or scattered rows without keeping
pages resident, and parse the memory budgets that decide block sizes. Used by :mod:`mlembed.knn`,
:mod:`mlembed.faiss_index`, :mod:`mlembed.mine` and distillation's collator; imports nothing else from mlembed.
"""

from __future__ import annotations

import mmap
import os
import re

import numpy as np

Embeddings = np.ndarray | str | os.PathLike

DEFAULT_BUDGET = 2 << 30


def parse_size(size: int | str | None) -> int:
    """Bytes from ``1G``, ``512M``, ``300k``, ``1.5GB`` or an int; ``None`` -> the default (2 GiB).

    Example:
        >>> parse_size("1G"), parse_size("512M"), parse_size(1000)
        (1073741824, 536870912, 1000)
    """
    if size is None:
        return DEFAULT_BUDGET
    if isinstance(size, (int, np.integer)):
        return int(size)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)i?b?\s*", str(size).lower())
    if not match:
        raise ValueError(f"cannot read a memory size from {size!r} (use e.g. 1G, 512M)")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " "))


def open_embeddings(emb: Embeddings) -> np.ndarray:
    """A 2-D float array from an array or a ``.npy`` path (memory-mapped, nothing loaded).

    Example:
        >>> open_embeddings(np.zeros((3, 4), dtype="float32")).shape
        (3, 4)
    """
    arr = np.load(emb, mmap_mode="r") if isinstance(emb, (str, os.PathLike)) else emb
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, dim), got shape {arr.shape}")
    return arr


def read_rows(arr: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` as a fresh contiguous float32 array.

    A memmap opened from a file is read with ``np.fromfile`` rather than through the mapping, so
    pages already read do not stay mapped and count towards this process's resident memory.

    Example:
        >>> read_rows(np.arange(6, dtype="float32").reshape(3, 2), 1, 3).tolist()
        [[2.0, 3.0], [4.0, 5.0]]
    """
    if isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.flags.c_contiguous and arr.filename:
        d = arr.shape[1]
        out = np.fromfile(
            arr.filename, dtype=arr.dtype, count=(stop - start) * d, offset=arr.offset + start * d * arr.itemsize
        )
        return out.reshape(stop - start, d).astype(np.float32, copy=False)
    return np.ascontiguousarray(arr[start:stop], dtype=np.float32)


def take_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (any order, repeats allowed) as a fresh float32 array.

    A memmap opened from a file is read row by row with ``os.pread`` rather than through the mapping, so a
    long run that reads scattered rows (distillation's teacher targets, a batch at a time) does not keep the
    whole file resident.

    Example:
        >>> take_rows(np.arange(6, dtype="float32").reshape(3, 2), np.array([2, 0, 2])).tolist()
        [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]]
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(arr)):
        raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for {len(arr)} rows")
    if isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.flags.c_contiguous and arr.filename:
        size = arr.shape[1] * arr.itemsize
        out = np.empty((len(rows), arr.shape[1]), dtype=arr.dtype)
        fd = os.open(arr.filename, os.O_RDONLY)
        try:
            for i, row in enumerate(rows.tolist()):
                out[i] = np.frombuffer(os.pread(fd, size, arr.offset + row * size), dtype=arr.dtype)
        finally:
            os.close(fd)
        return out.astype(np.float32, copy=False)
    return np.asarray(arr[rows], dtype=np.float32)
