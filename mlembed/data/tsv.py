"""``tsv:PATH`` — tab-separated pairs: ``src<TAB>tgt[<TAB>more translations]``.

Languages come from, in order: a header line naming them (``eng<TAB>deu``, as tatoeba-challenge
files have), a ``@src-tgt`` suffix on the spec, or the file name (``eng-deu.tsv``,
``x.en-de.tsv``).  With a header every column has its language and the English column (else the
first) is paired with each other column; without one, columns after the second are further
translations into the target language.  Blank lines are ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlembed.data.base import (
    Pair,
    expand_paths,
    langs_from_filename,
    oriented,
    parse_lang_pair,
    split_at_suffix,
    wanted_target,
)
from mlembed.files import DataError, OnBadLine, read_lines
from mlembed.languages import is_known_language, looks_like_lang, matches_any, normalize_lang


def _header_langs(fields: list[str]) -> list[str] | None:
    if len(fields) >= 2 and all(looks_like_lang(f) for f in fields) and any(is_known_language(f) for f in fields):
        return [normalize_lang(f) for f in fields]
    return None


def read_tsv(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream pairs from a TSV file, a folder of ``*.tsv`` (sorted) or a glob; ``target`` may end in ``@src-tgt``.

    ``langs`` keeps only pairs whose target (non-English side) language matches one of them.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "eng-deu.tsv")
        >>> _ = open(p, "w").write("Good morning.\\tGuten Morgen.\\n")
        >>> list(read_tsv(p))
        [Pair(src='Good morning.', tgt='Guten Morgen.', src_lang='en', tgt_lang='de')]
    """
    path, suffix = split_at_suffix(target)
    suffix_langs = parse_lang_pair(suffix) if suffix else None
    if suffix and suffix_langs is None:
        raise DataError(f"cannot read languages from @{suffix} (expected e.g. @en-de)", path)
    for file in expand_paths(path, ".tsv"):
        yield from _read_file(file, suffix_langs, langs, on_bad_line)


def _read_file(
    file: Path, suffix_langs: tuple[str, str] | None, langs: Sequence[str] | None, on_bad_line: OnBadLine
) -> Iterator[Pair]:
    lines = read_lines(file, on_bad_line)
    first = next(lines, None)
    if first is None:
        return
    header = _header_langs(first[1].split("\t"))
    pending = [] if header else [first]
    if header is None:
        pair_langs = suffix_langs or langs_from_filename(file)
        if pair_langs is None:
            raise DataError(
                "missing language: no header line naming the languages (e.g. 'eng<TAB>deu'), no @src-tgt "
                "suffix on the spec and no languages in the file name (e.g. eng-deu.tsv)",
                file,
            )
    columns = header or []
    pivot = next((i for i, lang in enumerate(columns) if lang.split("-")[0] == "en"), 0)
    targets = [i for i in range(len(columns)) if i != pivot and matches_any(columns[i], langs)]
    if header and not targets:
        return
    if not header:
        src_lang, tgt_lang = pair_langs
        if not wanted_target((src_lang, tgt_lang), langs):
            return
    expected = len(columns) or None
    for number, text in itertools.chain(pending, lines):
        if not text.strip():
            continue
        fields = text.split("\t")
        if expected is None:
            expected = len(fields)
            if expected < 2:
                if on_bad_line == "skip":
                    expected = None
                    continue
                raise DataError(f"expected at least 2 tab-separated columns, got {len(fields)}", file, number)
        if len(fields) != expected:
            if on_bad_line == "skip":
                continue
            raise DataError(f"expected {expected} tab-separated columns, got {len(fields)}", file, number)
        if header:
            for i in targets:
                yield oriented(fields[pivot], fields[i], columns[pivot], columns[i])
        else:
            for translation in fields[1:]:
                yield oriented(fields[0], translation, src_lang, tgt_lang)
