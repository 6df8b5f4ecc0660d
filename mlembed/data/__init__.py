"""Parallel data: streaming readers for many corpus formats behind one spec string, plus cleaning.

A *spec* names a source: ``KIND:WHERE``, e.g. ``tsv:pairs.tsv``, ``pair:train.en,train.de``,
``tatoeba:../shared/data/tatoeba:deu``, ``ntrex:../shared/data/ntrex128:deu,fra``,
``gettext:system:de``, ``jsonl:pairs.jsonl``, ``hf:./my_dataset``.  :func:`read_pairs` streams
:class:`Pair` tuples (English side as ``src`` wherever there is one), never holding a corpus in
memory.  See ``docs/data.md`` for every kind.

Example:
    >>> from mlembed.data import read_pairs
    >>> next(read_pairs("tatoeba:../shared/data/tatoeba:deu"))  # doctest: +SKIP
    Pair(src='...', tgt='...', src_lang='en', tgt_lang='de')
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlembed.data.base import Pair
from mlembed.files import DataError, OnBadLine
from mlembed.languages import lang_matches, normalize_lang

if TYPE_CHECKING:
    from mlembed.data.cleaning import CleanOptions, CleanStats

__all__ = ["Pair", "DataSpec", "KINDS", "parse_spec", "read_pairs", "ntrex_documents"]

# kind -> (module, reader function, whether WHERE may end in ":lang,lang")
KINDS: dict[str, tuple[str, str, bool]] = {
    "tsv": ("mlembed.data.tsv", "read_tsv", False),
    "pair": ("mlembed.data.pair", "read_moses", False),
    "tatoeba": ("mlembed.data.tatoeba", "read_tatoeba", True),
    "ntrex": ("mlembed.data.ntrex", "read_ntrex", True),
    "gettext": ("mlembed.data.gettext_catalogs", "read_gettext", True),
    "jsonl": ("mlembed.data.jsonl", "read_jsonl", False),
    "hf": ("mlembed.data.hf", "read_hf", False),
}
_EXAMPLES = "tsv:pairs.tsv, pair:train.en,train.de, tatoeba:DIR:deu, ntrex:DIR:deu, gettext:system:de, jsonl:pairs.jsonl, hf:./saved_dataset"


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec: ``kind``, ``where`` (path, name...) and the languages it selects (normalized).

    Example:
        >>> parse_spec("ntrex:/data/ntrex128:deu,zho-CN")
        DataSpec(kind='ntrex', where='/data/ntrex128', langs=('de', 'zh-Hans'))
    """

    kind: str
    where: str
    langs: tuple[str, ...] = ()

    def reader(self) -> Callable[..., Iterator[Pair]]:
        """The reader function of this kind."""
        module, function, _ = KINDS[self.kind]
        return getattr(importlib.import_module(module), function)


def parse_spec(spec: str) -> DataSpec:
    """Parse ``KIND:WHERE[:lang,lang]``; unknown kinds raise :class:`DataError` listing the valid ones.

    Example:
        >>> parse_spec("gettext:system:de,pt_BR")
        DataSpec(kind='gettext', where='system', langs=('de', 'pt-BR'))
    """
    kind, sep, where = spec.partition(":")
    if not sep or kind not in KINDS:
        raise DataError(
            f"unknown kind of data spec: expected KIND:WHERE with KIND one of {', '.join(KINDS)} (e.g. {_EXAMPLES})",
            spec,
        )
    langs: tuple[str, ...] = ()
    if KINDS[kind][2] and ":" in where:
        head, _, tail = where.rpartition(":")
        if "/" not in tail:
            where = head
            try:
                langs = tuple(normalize_lang(code) for code in tail.split(",") if code.strip())
            except ValueError as exc:
                raise DataError(f"bad language list {tail!r}: {exc}", spec) from None
    if not where:
        raise DataError("data spec names no path", spec)
    return DataSpec(kind, where, langs)


def _combine(spec_langs: tuple[str, ...], langs: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if isinstance(langs, str):  # "de,fr" as well as ["de", "fr"]
        langs = langs.split(",")
    wanted = tuple(normalize_lang(code) for code in langs or () if code.strip())
    if not spec_langs:
        return wanted or None
    if not wanted:
        return spec_langs
    # both given: keep the more specific of every matching combination
    both = {
        s if lang_matches(s, w) else w for s in spec_langs for w in wanted if lang_matches(s, w) or lang_matches(w, s)
    }
    if not both:
        raise DataError(f"languages {list(wanted)} do not overlap the spec's {list(spec_langs)}", "--langs")
    return tuple(sorted(both))


def read_pairs(
    spec: str | Sequence[str],
    langs: Sequence[str] | str | None = None,
    on_bad_line: OnBadLine = "error",
    clean: CleanOptions | None = None,
    stats: CleanStats | None = None,
) -> Iterator[Pair]:
    """Stream :class:`Pair` s from one spec (or several, chained), optionally cleaned.

    ``langs`` keeps pairs whose target language matches one of them (``"zh"`` matches ``zh-Hans``;
    ISO 639-3 codes and locales work; a comma-separated string is split).  When the spec lists
    languages too, both filters apply.  ``on_bad_line="skip"`` drops invalid UTF-8 / malformed rows
    instead of raising :class:`DataError`.  ``clean`` applies :func:`mlembed.data.cleaning.clean_pairs`
    (dedupe across all the specs given); ``stats`` collects counts per reason and language.

    Example:
        >>> pairs = read_pairs("tatoeba:../shared/data/tatoeba", langs=["deu", "fr"])  # doctest: +SKIP
        >>> sum(1 for _ in pairs)  # doctest: +SKIP
        2000
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    parsed = [parse_spec(s) for s in specs]  # fail fast on a bad spec before reading anything
    pairs: Iterator[Pair] = itertools.chain.from_iterable(
        p.reader()(p.where, _combine(p.langs, langs), on_bad_line) for p in parsed
    )
    if clean is not None or stats is not None:
        from mlembed.data.cleaning import clean_pairs

        pairs = clean_pairs(pairs, clean, stats)
    return pairs


def ntrex_documents(directory: str) -> list[str]:
    """NTREX's document id of each line, for a train/dev split by document (see :mod:`mlembed.data.ntrex`).

    Example:
        >>> len(ntrex_documents("../shared/data/ntrex128"))  # doctest: +SKIP
        1997
    """
    from mlembed.data.ntrex import ntrex_documents as documents

    return documents(directory)
