"""What every reader shares: the :class:`Pair` type, path expansion and language helpers."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from mlembed.files import DataError, OnBadLine, read_lines
from mlembed.languages import looks_like_lang, matches_any, normalize_lang

T = TypeVar("T")


class Pair(NamedTuple):
    """One translation pair; ``src`` is the English side wherever the source has one.

    Example:
        >>> Pair("Open file", "Datei öffnen", "en", "de").tgt_lang
        'de'
    """

    src: str
    tgt: str
    src_lang: str
    tgt_lang: str


def oriented(src: str, tgt: str, src_lang: str, tgt_lang: str) -> Pair:
    """A :class:`Pair` with the English side (if any) as ``src``.

    Example:
        >>> oriented("Hallo", "Hello", "de", "en")
        Pair(src='Hello', tgt='Hallo', src_lang='en', tgt_lang='de')
    """
    if tgt_lang.split("-")[0] == "en" and src_lang.split("-")[0] != "en":
        return Pair(tgt, src, tgt_lang, src_lang)
    return Pair(src, tgt, src_lang, tgt_lang)


def wanted_target(pair_langs: tuple[str, str], langs: Sequence[str] | None) -> bool:
    """Whether a file whose languages are ``pair_langs`` (either order) passes the target filter."""
    src_lang, tgt_lang = pair_langs
    if tgt_lang.split("-")[0] == "en" and src_lang.split("-")[0] != "en":
        tgt_lang = src_lang
    return matches_any(tgt_lang, langs)


def split_at_suffix(text: str) -> tuple[str, str | None]:
    """Split a trailing ``@LANGS`` (``data.tsv@en-de``) off a path; ``@`` inside folder names is kept.

    Example:
        >>> split_at_suffix("x/pairs.tsv@en-de"), split_at_suffix("plain.tsv")
        (('x/pairs.tsv', 'en-de'), ('plain.tsv', None))
    """
    head, sep, tail = text.rpartition("@")
    if sep and head and "/" not in tail and tail and all(looks_like_lang(p) for p in tail.split("-", 1)):
        return head, tail
    return text, None


def parse_lang_pair(text: str) -> tuple[str, str] | None:
    """``"eng-deu"`` / ``"en-de"`` / ``"eng-cmn_Hans"`` -> normalized ``("en", "de")``; None if not two codes.

    Example:
        >>> parse_lang_pair("eng-cmn_Hans"), parse_lang_pair("train")
        (('en', 'zh-Hans'), None)
    """
    parts = text.split("-")
    for cut in range(1, len(parts)):  # "eng-aze-Latn": try every split point, first valid wins
        left, right = "-".join(parts[:cut]), "-".join(parts[cut:])
        if looks_like_lang(left) and looks_like_lang(right) and len(left) <= 8 and len(parts[0]) <= 3:
            return normalize_lang(left), normalize_lang(right)
    return None


def langs_from_filename(path: str | os.PathLike) -> tuple[str, str] | None:
    """Languages from a name like ``eng-deu.tsv``, ``x.en-de.tsv`` or ``train.eng-cmn_Hans.tsv``.

    Example:
        >>> langs_from_filename("data/x.en-de.tsv"), langs_from_filename("pairs.tsv")
        (('en', 'de'), None)
    """
    stem = Path(path).name
    for suffix in (".gz", ".tsv", ".txt", ".jsonl"):
        stem = stem.removesuffix(suffix)
    return parse_lang_pair(stem.rsplit(".", 1)[-1])


def expand_paths(pattern: str, suffix: str) -> list[Path]:
    """A file, a folder (its ``*suffix`` files, sorted) or a glob -> sorted list of files.

    Raises FileNotFoundError when nothing matches.

    Example:
        >>> expand_paths("/nonexistent/*.tsv", ".tsv")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no files match /nonexistent/*.tsv
    """
    path = Path(pattern)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(suffix) and p.is_file())
        if not files:
            raise FileNotFoundError(f"no {suffix} files in folder {pattern}")
        return files
    files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
    if not files:
        raise FileNotFoundError(f"no files match {pattern}")
    return files


def count_lines(path: str | os.PathLike) -> int:
    """Number of lines in a file (a last line without newline counts)."""
    count = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_aligned(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    lang_a: str,
    lang_b: str,
    on_bad_line: OnBadLine = "error",
) -> Iterator[Pair]:
    """Stream pairs from two line-aligned files (Moses style), English side first.

    Every line pair is yielded, empty ones included, so the i-th pair is line i of both files.
    With ``on_bad_line="skip"`` a line with invalid UTF-8 drops the pair (on both sides).
    Files with different line counts raise :class:`DataError` naming both files and counts
    (detected when the shorter one ends; never silently truncated).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "x.de"), "w").write("Hallo\\n")
        >>> _ = open(os.path.join(d, "x.en"), "w").write("Hello\\n")
        >>> list(read_aligned(os.path.join(d, "x.de"), os.path.join(d, "x.en"), "de", "en"))
        [Pair(src='Hello', tgt='Hallo', src_lang='en', tgt_lang='de')]
    """
    it_a = read_lines(path_a, on_bad_line)
    it_b = read_lines(path_b, on_bad_line)
    a = next(it_a, None)
    b = next(it_b, None)
    while a is not None and b is not None:
        if a[0] == b[0]:
            yield oriented(a[1], b[1], lang_a, lang_b)
            a, b = next(it_a, None), next(it_b, None)
        elif a[0] < b[0]:  # the other side's line was skipped as bad
            a = next(it_a, None)
        else:
            b = next(it_b, None)
    if a is not None or b is not None or on_bad_line == "skip":  # skipped bad lines can hide a mismatch
        n_a, n_b = count_lines(path_a), count_lines(path_b)
        if n_a != n_b:
            raise DataError(
                f"line counts differ: {path_a} has {n_a} lines, {path_b} has {n_b} lines",
                path_a if n_a > n_b else path_b,
                min(n_a, n_b) + 1,
            )


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Group an iterable into lists of ``size`` (the last may be shorter): the one batching helper of
    mlembed (cleaning, streamed encoding, search queries).

    Example:
        >>> list(batched("abcde", 2))
        [['a', 'b'], ['c', 'd'], ['e']]
    """
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
