"""A disk cache of teacher embeddings, keyed by teacher fingerprint and sentence hash.

Distillation needs the teacher's embedding of every distinct English sentence, every epoch. The
cache computes each one once, appends it to a memory-mapped float file, and reuses it across epochs
and across runs.  Layout under ``DIR/<teacher fingerprint>/``::

    vectors.bin   float32 or float16 rows, appended
    keys.bin      uint64 sentence hashes (blake2b-64 of the UTF-8 text), one per row, appended
    meta.json     dimension, dtype, teacher fingerprint

Crash safety: a chunk's vectors are written and fsynced *before* its keys, and on open both files are
truncated to the number of complete ``(key, row)`` entries, so a kill mid-write loses at most that
chunk and never yields a key pointing at a half-written row.

Concurrency: appends and that repair happen under an exclusive ``flock`` on ``lock``, and a writer
re-reads ``keys.bin`` under it, so two ``distill`` runs sharing a cache never interleave rows or number
them from a stale view (encoding itself runs outside the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.encoding import encode
from mlembed.files import atomic_open
from mlembed.models import embedding_dim, fingerprint


def sentence_key(text: str) -> int:
    """64-bit hash of a sentence (collision odds ~1e-8 at 1M sentences).

    Example:
        >>> sentence_key("Hello") == sentence_key("Hello") != sentence_key("hello")
        True
    """
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class TeacherCache:
    """Teacher embeddings of sentences, computed once and memory-mapped from disk.

    Example:
        >>> import tempfile
        >>> from mlembed.models import load_model
        >>> cache = TeacherCache(tempfile.mkdtemp(), load_model("minilm-en"))
        >>> rows = cache.rows(["Hello world", "Good morning"], show_progress=False)
        >>> cache.vectors()[rows].shape, cache.computed
        ((2, 384), 2)
        >>> _ = cache.rows(["Hello world"], show_progress=False); cache.computed  # reused, not recomputed
        2
    """

    def __init__(self, directory: str | os.PathLike, teacher: Any, dtype: str = "float32", batch_size: int = 128):
        self.teacher = teacher
        self.fingerprint = fingerprint(teacher)
        self.dir = Path(directory) / self.fingerprint
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = embedding_dim(teacher)
        self.batch_size = batch_size
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta["dim"] != self.dim:
                raise ValueError(f"{meta_path}: cache holds {meta['dim']}-d vectors, teacher gives {self.dim}-d")
            dtype = meta["dtype"]
        else:
            with atomic_open(meta_path) as fh:
                json.dump({"dim": self.dim, "dtype": dtype, "teacher": self.fingerprint}, fh)
        self.dtype = np.dtype(dtype)
        self._vec_path, self._key_path = self.dir / "vectors.bin", self.dir / "keys.bin"
        self._mmap: np.memmap | None = None
        with self._locked():
            self._recover()
            self._reload()
        self.computed = 0  # sentences this process had to encode with the teacher

    def __len__(self) -> int:
        return len(self._sorted)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive lock on the cache folder (other processes wait)."""
        with open(self.dir / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _reload(self) -> None:
        """Read every key on disk (including rows other processes appended) into the sorted lookup."""
        keys = np.fromfile(self._key_path, dtype=np.uint64) if self._key_path.exists() else np.zeros(0, np.uint64)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        self._mmap = None

    def _recover(self) -> None:
        """Drop a partially written tail (a kill between or during the two appends)."""
        row_bytes = self.dim * self.dtype.itemsize
        n = _complete_rows(self._vec_path, self._key_path, row_bytes)
        for path, size in ((self._vec_path, n * row_bytes), (self._key_path, n * 8)):
            if path.exists() and path.stat().st_size != size:
                os.truncate(path, size)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Row index of each key, -1 where missing."""
        if not len(self._sorted):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.where(self._sorted[pos] == keys, self._order[pos], -1)

    def rows(self, sentences: Iterable[str], show_progress: bool = True, chunk_size: int = 4096) -> np.ndarray:
        """Row indices (into :meth:`vectors`) of ``sentences``, encoding only those not cached yet.

        New sentences are encoded in chunks and appended; each chunk is durable once written, so an
        interrupted call resumes where it stopped.
        """
        from tqdm.auto import tqdm

        sentences = list(sentences)
        keys = np.fromiter((sentence_key(s) for s in sentences), dtype=np.uint64, count=len(sentences))
        rows = self.lookup(keys)
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            uniq_keys, first = np.unique(keys[missing], return_index=True)
            todo = missing[first]
            bar = tqdm(total=len(todo), desc="teacher embeddings", unit="sent", disable=not show_progress)
            for start in range(0, len(todo), chunk_size):
                idx = todo[start : start + chunk_size]
                self._append([sentences[i] for i in idx], keys[idx])
                bar.update(len(idx))
            bar.close()
            rows = self.lookup(keys)
        return rows

    def _append(self, sentences: Sequence[str], keys: np.ndarray) -> None:
        vectors = encode(list(sentences), self.teacher, batch_size=self.batch_size).astype(self.dtype)
        with self._locked():
            self._recover()  # a writer killed mid-append
            for path, data in ((self._vec_path, vectors), (self._key_path, keys.astype(np.uint64))):
                with open(path, "ab") as fh:
                    fh.write(np.ascontiguousarray(data).tobytes())
                    fh.flush()
                    os.fsync(fh.fileno())
            self._reload()  # row numbers come from the file, whoever appended before us
        self.computed += len(sentences)

    @staticmethod
    def stored(directory: str | os.PathLike, teacher_fingerprint: str) -> np.ndarray:
        """The complete rows a cache of the teacher ``teacher_fingerprint`` holds, as a read-only memmap, without
        loading the teacher (training reads its targets from it; an interrupted append's tail is left out).

        Example:
            >>> import tempfile
            >>> from mlembed.models import load_model
            >>> d = tempfile.mkdtemp(); cache = TeacherCache(d, load_model("minilm-en"))
            >>> rows = cache.rows(["Hello world"], show_progress=False)
            >>> TeacherCache.stored(d, cache.fingerprint).shape
            (1, 384)
        """
        folder = Path(directory) / teacher_fingerprint
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: no teacher cache of {teacher_fingerprint} here")
        meta = json.loads(meta_path.read_text())
        dtype, dim = np.dtype(meta["dtype"]), int(meta["dim"])
        vec_path = folder / "vectors.bin"
        n = _complete_rows(vec_path, folder / "keys.bin", dim * dtype.itemsize)
        if n == 0:
            return np.zeros((0, dim), dtype)
        return np.memmap(vec_path, dtype=dtype, mode="r", shape=(n, dim))

    def vectors(self) -> np.ndarray:
        """All cached vectors as a read-only memory map, ``(len(self), dim)``."""
        if self._mmap is None or len(self._mmap) != len(self):
            if len(self) == 0:
                return np.zeros((0, self.dim), self.dtype)
            self._mmap = np.memmap(self._vec_path, dtype=self.dtype, mode="r", shape=(len(self), self.dim))
        return self._mmap


def _complete_rows(vec_path: Path, key_path: Path, row_bytes: int) -> int:
    """Rows whose vector and key are both wholly on disk (an interrupted append leaves a longer file)."""
    n_vec = vec_path.stat().st_size // row_bytes if vec_path.exists() else 0
    return min(n_vec, key_path.stat().st_size // 8 if key_path.exists() else 0)
