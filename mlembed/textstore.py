"""Random access to the lines of a large text file without loading it: a line-offset file.

``LineStore.build(text, dest)`` copies ``text`` to ``dest`` and writes ``dest + ".offsets.npy"``
(int64 start of each line plus the end of the file, 8 bytes a line); ``store[i]`` then seeks and reads one line.
:func:`unique_line_ids` finds the first occurrence of each distinct line by 64-bit hashes held
in numpy arrays (16 bytes a line), so deduplicating millions of lines needs no Python set of strings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mlembed.files import DataError, atomic_path


def _scan(path: str | os.PathLike, copy_to: str | os.PathLike | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line_number, byte_offset, raw_line_without_newline)``; checks UTF-8 (DataError names the line)."""
    offset = 0
    out = open(copy_to, "wb") if copy_to is not None else None
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"invalid UTF-8 at byte {exc.start} of the line", path, number) from None
                if out is not None:
                    out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                yield number, offset, raw.rstrip(b"\r\n")
                offset += len(raw) if (raw.endswith(b"\n") or out is None) else len(raw) + 1
    finally:
        if out is not None:
            out.close()


class LineStore:
    """Lines of a UTF-8 text file by index, through a line-offset file.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
        >>> _ = open(p, "w").write("eins\\nzwei\\ndrei\\n")
        >>> store = LineStore.build(p, os.path.join(d, "copy.txt"))
        >>> len(store), store[1], store[2]
        (3, 'zwei', 'drei')
    """

    def __init__(self, path: str | os.PathLike, offsets: np.ndarray):
        self.path = Path(path)
        self.offsets = offsets
        self._fh = open(self.path, "rb")

    @staticmethod
    def offsets_path(path: str | os.PathLike) -> Path:
        return Path(str(path) + ".offsets.npy")

    @classmethod
    def build(
        cls, source: str | os.PathLike, dest: str | os.PathLike | None = None, offsets: str | os.PathLike | None = None
    ) -> LineStore:
        """Index ``source``, copied to ``dest`` first when given; the offsets go to ``offsets``
        (default: next to the text, ``.offsets.npy`` appended). Every file is written atomically."""
        target = Path(dest) if dest is not None else Path(source)
        offsets_file = Path(offsets) if offsets is not None else cls.offsets_path(target)
        with contextlib.ExitStack() as stack:
            tmp_text = stack.enter_context(atomic_path(target)) if dest is not None else None
            tmp_off = stack.enter_context(atomic_path(offsets_file, suffix=".npy"))
            offsets = array("q")
            end = 0
            for _, offset, line in _scan(source, tmp_text):
                offsets.append(offset)
                end = offset + len(line) + 1
            offsets.append(end)
            np.save(tmp_off, np.frombuffer(offsets, dtype=np.int64))
        return cls.open(target, offsets_file)

    @classmethod
    def open(cls, path: str | os.PathLike, offsets: str | os.PathLike | None = None) -> LineStore:
        """Open a store built earlier (the offsets are memory-mapped)."""
        offsets_file = Path(offsets) if offsets is not None else cls.offsets_path(path)
        if not offsets_file.exists():
            raise FileNotFoundError(f"{offsets_file}: line offsets missing (build the store first)")
        return cls(path, np.load(offsets_file, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        if not -len(self) <= i < len(self):
            raise IndexError(f"line {i} out of range for {len(self)} lines")
        i %= len(self)
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        self._fh.seek(start)
        return self._fh.read(stop - start).decode("utf-8").rstrip("\r\n")

    def close(self) -> None:
        self._fh.close()


def unique_line_ids(path: str | os.PathLike, strip: bool = True) -> tuple[np.ndarray, int]:
    """0-based indices of the first occurrence of each distinct line (in file order) and the line count.

    Lines are compared by a 64-bit BLAKE2 hash of their (stripped) text; empty lines are dropped.

    Example:
        >>> import tempfile; p = tempfile.mktemp()
        >>> _ = open(p, "w").write("a\\nb\\na\\n\\nc\\nb\\n")
        >>> ids, n = unique_line_ids(p); ids.tolist(), n
        ([0, 1, 4], 6)
    """
    hashes = array("Q")
    keep = array("q")
    n = 0
    for number, _, raw in _scan(path):
        n = number
        text = raw.strip() if strip else raw
        if not text:
            continue
        hashes.append(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little"))
        keep.append(number - 1)
    h = np.frombuffer(hashes, dtype=np.uint64)
    ids = np.frombuffer(keep, dtype=np.int64)
    _, first = np.unique(h, return_index=True)
    return ids[np.sort(first)], n
