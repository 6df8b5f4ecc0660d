"""``tatoeba:DIR[:lang,lang]`` — LASER's Tatoeba test layout: ``tatoeba.xxx-eng.xxx`` + ``tatoeba.xxx-eng.eng``.

Every line pair is yielded (empty ones too), so pair i of a language is line i of its files.
These files are an evaluation set: use them to test, or to decontaminate training data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlembed.data.base import Pair, read_aligned
from mlembed.files import DataError, OnBadLine
from mlembed.languages import matches_any, normalize_lang

_NAME = re.compile(r"^tatoeba\.([A-Za-z_-]+)-eng\.([A-Za-z_-]+)$")


def tatoeba_languages(directory: str | Path) -> list[str]:
    """The ISO 639-3 codes of the Tatoeba pairs in ``directory`` (from either side's file name), sorted.

    Example:
        >>> tatoeba_languages("../shared/data/tatoeba")[:3]  # doctest: +SKIP
        ['ara', 'ces', 'cmn']
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such folder: {directory}")
    codes = {m.group(1) for p in directory.iterdir() if (m := _NAME.match(p.name))}
    return sorted(codes)


def read_tatoeba(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream the Tatoeba pairs (English first) of every language in folder ``target`` matching ``langs``.

    A language with only one of its two files is a :class:`DataError` naming the missing file.

    Example:
        >>> sum(1 for _ in read_tatoeba("../shared/data/tatoeba", ["deu"]))  # doctest: +SKIP
        1000
    """
    directory = Path(target)
    codes = [c for c in tatoeba_languages(directory) if matches_any(normalize_lang(c), langs)]
    if not codes:
        raise DataError(f"no Tatoeba files (tatoeba.xxx-eng.xxx) for languages {list(langs or [])}", directory)
    for code in codes:
        eng, other = directory / f"tatoeba.{code}-eng.eng", directory / f"tatoeba.{code}-eng.{code}"
        for path in (eng, other):
            if not path.is_file():
                raise DataError(f"missing side of the {code} pair: {path.name} not found", path)
        yield from read_aligned(eng, other, "en", normalize_lang(code), on_bad_line)
