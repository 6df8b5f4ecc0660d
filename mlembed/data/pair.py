"""``pair:PATH_A,PATH_B`` — two line-aligned files (Moses style), e.g. ``train.en,train.de``.

Each file's language comes from a ``@lang`` after its path or else from its last suffix
(``train.en`` -> ``en``).  Different line counts are an error naming both files and counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from mlembed.data.base import Pair, read_aligned, split_at_suffix, wanted_target
from mlembed.files import DataError, OnBadLine
from mlembed.languages import looks_like_lang, normalize_lang


def _path_and_lang(item: str) -> tuple[str, str]:
    path, lang = split_at_suffix(item.strip())
    if lang is None:
        ext = Path(path).suffix.lstrip(".")
        if not ext or not looks_like_lang(ext):
            raise DataError("missing language: name it with a suffix (x.de) or @lang after the path", path)
        lang = ext
    return path, normalize_lang(lang)


def read_moses(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream pairs from ``"PATH_A,PATH_B"`` (each optionally ``PATH@lang``), English side first.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "t.en"), "w").write("Thank you.\\n")
        >>> _ = open(os.path.join(d, "t.fr"), "w").write("Merci.\\n")
        >>> list(read_moses(f"{d}/t.en,{d}/t.fr"))
        [Pair(src='Thank you.', tgt='Merci.', src_lang='en', tgt_lang='fr')]
    """
    items = target.split(",")
    if len(items) != 2:
        raise DataError(f"expected two comma-separated paths, got {len(items)}", f"pair:{target}")
    (path_a, lang_a), (path_b, lang_b) = (_path_and_lang(i) for i in items)
    for path in (path_a, path_b):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such file: {path}")
    if wanted_target((lang_a, lang_b), langs):
        yield from read_aligned(path_a, path_b, lang_a, lang_b, on_bad_line)
