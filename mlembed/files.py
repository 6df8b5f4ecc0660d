"""File helpers shared by every module: atomic writes and line reading with precise errors.

Every output mlembed writes goes through :func:`atomic_path`, so a killed job never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

OnBadLine = Literal["error", "skip"]


class DataError(ValueError):
    """Bad input data; the message names the file and, where known, the line.

    Example:
        >>> str(DataError("expected 2 columns, got 1", "pairs.tsv", 7))
        'pairs.tsv:7: expected 2 columns, got 1'
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporaries a killed writer of ``path`` left beside it (``.NAME.PID.*`` whose process is
    gone: kill -9 runs no cleanup); a live writer's are kept. Returns the names removed.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / ".out.npy.999999999.x.npy").write_bytes(b"half")
        >>> remove_stale_temporaries(d / "out.npy"), sorted(p.name for p in d.iterdir())
        (['.out.npy.999999999.x.npy'], [])
    """
    import glob
    import shutil

    path = Path(path)
    removed = []
    prefix = f".{path.name}."
    for item in path.parent.glob(f".{glob.escape(path.name)}.*"):
        pid = item.name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
        removed.append(item.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.

    Example:
        >>> import numpy as np, tempfile, os
        >>> out = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> with atomic_path(out, suffix=".npy") as tmp:
        ...     np.save(tmp, np.zeros(3))
        >>> np.load(out).shape
        (3,)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=(suffix or ".tmp"), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a file for writing that appears under ``path`` only once fully written.

    Example:
        >>> import tempfile, os
        >>> out = os.path.join(tempfile.mkdtemp(), "a.txt")
        >>> with atomic_open(out) as fh:
        ...     _ = fh.write("hello\\n")
        >>> open(out).read()
        'hello\\n'
    """
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh


def read_lines(
    path: str | os.PathLike,
    on_bad_line: OnBadLine = "error",
    start: int = 0,
    first_line: int = 1,
    limit: int | None = None,
) -> Iterator[tuple[int, str]]:
    """Stream ``(line_number, text)`` from a UTF-8 text file, without the trailing newline.

    Invalid UTF-8 raises :class:`DataError` naming file and line, or with ``on_bad_line="skip"``
    the line is skipped (its number is still counted, so numbers stay true to the file).
    ``path`` may be ``"-"`` for standard input. A shard of a file: ``start`` (byte offset of line
    ``first_line``) and at most ``limit`` lines.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "s.txt")
        >>> _ = open(p, "wb").write(b"Hallo Welt\\n\\xff bad\\n")
        >>> list(read_lines(p, on_bad_line="skip"))
        [(1, 'Hallo Welt')]
    """
    import itertools
    import sys

    fh = sys.stdin.buffer if str(path) == "-" else open(path, "rb")
    try:
        if start:
            fh.seek(start)
        for number, raw in enumerate(itertools.islice(fh, limit), start=first_line):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if on_bad_line == "skip":
                    continue
                raise DataError(
                    f"invalid UTF-8 at byte {exc.start} of the line (use --on-bad-line skip to drop such lines)",
                    "<stdin>" if str(path) == "-" else path,
                    number,
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def replace_dir(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Swap the completed folder ``staging`` into ``target`` by renames (same file system): a kill at any
    point leaves the previous ``target`` (or, between the two renames, ``.NAME.old`` beside it), never a
    folder mixing old and new files. ``staging`` should be a sibling of ``target``.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "new").mkdir(); _ = (root / "new" / "a.txt").write_text("new")
        >>> (root / "out").mkdir(); _ = (root / "out" / "b.txt").write_text("old")
        >>> replace_dir(root / "new", root / "out")
        >>> sorted(p.name for p in root.iterdir()), sorted(p.name for p in (root / "out").iterdir())
        (['out'], ['a.txt'])
    """
    import shutil

    staging, target = Path(staging), Path(target)
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)


def cache_root() -> Path:
    """Where mlembed keeps caches (teacher embeddings, converted models, file hashes):
    ``$MLEMBED_CACHE``, default ``~/.cache/mlembed``.

    Example:
        >>> cache_root().name in ("mlembed", os.path.basename(os.environ.get("MLEMBED_CACHE", "")))
        True
    """
    return Path(os.environ.get("MLEMBED_CACHE", Path.home() / ".cache" / "mlembed"))


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed.

    Example:
        >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "w").write("a")
        >>> file_sha256(p)[:12]
        'ca978112ca1b'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while buf := fh.read(block):
            digest.update(buf)
    return digest.hexdigest()
