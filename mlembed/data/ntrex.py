"""``ntrex:DIR[:lang,lang]`` — NTREX-128: ``newstest2019-src.eng.txt`` and ``newstest2019-ref.LANG.txt``.

1,997 English news sentences with human translations into 128 languages.  Every line is
yielded, so pair i of a language is line i and :func:`ntrex_documents` gives its document for a
train/dev split by document.  English references (``eng-GB``, ``eng-US``, ``eng-IN``) are skipped
unless ``langs`` asks for English, and the second Spanish reference (``newstest2019-ref-2.spa.txt``)
is left out so that each English sentence appears once per language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlembed.data.base import Pair, read_aligned
from mlembed.files import DataError, OnBadLine, read_lines
from mlembed.languages import lang_matches, matches_any, normalize_lang

SOURCE = "newstest2019-src.eng.txt"
_REF = re.compile(r"^newstest2019-ref\.([A-Za-z-]+)\.txt$")


def ntrex_languages(directory: str | Path) -> list[str]:
    """NTREX's own codes (``deu``, ``zho-CN``, ...) of the references in ``directory``, sorted.

    Example:
        >>> len(ntrex_languages("../shared/data/ntrex128"))  # doctest: +SKIP
        128
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such folder: {directory}")
    return sorted(m.group(1) for p in directory.iterdir() if (m := _REF.match(p.name)))


def ntrex_documents(directory: str | Path) -> list[str]:
    """The document id of each of the 1,997 lines (from ``DOCUMENT_IDS.tsv``), in line order.

    Example:
        >>> docs = ntrex_documents("../shared/data/ntrex128")  # doctest: +SKIP
        >>> len(docs), docs[0]  # doctest: +SKIP
        (1997, 'bbc.381790')
    """
    path = Path(directory) / "DOCUMENT_IDS.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"no DOCUMENT_IDS.tsv in {directory}")
    return [text.split("\t")[0].strip() for _, text in read_lines(path)]


def read_ntrex(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream NTREX pairs (English source first) for the references in folder ``target`` matching ``langs``.

    Example:
        >>> sum(1 for _ in read_ntrex("../shared/data/ntrex128", ["deu"]))  # doctest: +SKIP
        1997
    """
    directory = Path(target)
    source = directory / SOURCE
    codes = ntrex_languages(directory)
    if not source.is_file():
        raise DataError(f"missing English source {SOURCE}", source)
    wants_english = any(lang_matches(w, "en") for w in langs or ())
    chosen = [
        c for c in codes if matches_any(normalize_lang(c), langs) and (wants_english or not lang_matches(c, "en"))
    ]
    if not chosen:
        raise DataError(
            f"no NTREX references (newstest2019-ref.LANG.txt) for languages {list(langs or [])}", directory
        )
    for code in chosen:
        yield from read_aligned(
            source, directory / f"newstest2019-ref.{code}.txt", "en", normalize_lang(code), on_bad_line
        )
