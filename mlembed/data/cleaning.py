"""Cleaning parallel data: normalisation, length filters, exact dedupe and decontamination.

:func:`clean_pairs` streams; the memory it keeps is one 64-bit hash per distinct pair kept (for
dedupe) and one per distinct evaluation sentence (for decontamination), never the strings.

Rules, applied in this order (the first that fails names the reason a pair is dropped):

* ``empty``: a side is empty after normalisation (Unicode NFC, whitespace runs -> one space, trimmed);
* ``too_short``: a side has fewer than ``min_chars`` characters, or the English/source side fewer
  than ``min_words`` words (only the source side is counted: Chinese, Japanese or Thai do not
  separate words by spaces);
* ``too_long``: a side has more than ``max_chars`` characters;
* ``ratio``: the longer side is more than ``max_len_ratio`` times the shorter, measured by
  :func:`length_units` (CJK ideographs count 3, kana and Hangul 2, so Chinese and Japanese compare
  with English); checked only when the longer side has at least ``ratio_min_chars`` units, as
  short UI strings vary a lot;
* ``contaminated``: either side equals (after the same normalisation) a line of the
  ``decontaminate`` files;
* ``duplicate``: the same (source, target, languages) was kept before.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from mlembed.data.base import Pair
from mlembed.io import read_lines

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
REASONS = ("empty", "too_short", "too_long", "ratio", "contaminated", "duplicate")


@dataclass
class CleanOptions:
    """What :func:`clean_pairs` does; the defaults suit sentence-level distillation data.

    Example:
        >>> CleanOptions(min_words=3, decontaminate=["../shared/data/tatoeba"]).max_len_ratio
        3.0
    """

    nfc: bool = True
    fold_whitespace: bool = True
    min_chars: int = 1
    max_chars: int = 1000
    min_words: int = 1
    max_len_ratio: float | None = 3.0
    ratio_min_chars: int = 10
    dedupe: bool = True
    decontaminate: Sequence[str | os.PathLike] = ()


@dataclass
class CleanStats:
    """Counts per reason (``read``, ``kept`` and each of :data:`REASONS`), in total and per language pair.

    Example:
        >>> s = CleanStats()
        >>> s.add("de", "read"); s.add("de", "kept")
        >>> s.totals["kept"], s.by_lang["de"]["read"]
        (1, 1)
    """

    totals: Counter = field(default_factory=Counter)
    by_lang: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    decontamination_sentences: int = 0

    def add(self, lang: str, reason: str) -> None:
        """Count one pair of language pair ``lang`` under ``reason``."""
        self.totals[reason] += 1
        self.by_lang[lang][reason] += 1

    def summary(self) -> str:
        """A table: one row per language pair (and a total), one column per count.

        Example:
            >>> s = CleanStats(); s.add("en-de", "read"); s.add("en-de", "duplicate")
            >>> s.summary().splitlines()[1].split()
            ['en-de', '1', '0', '0', '0', '0', '0', '0', '1']
        """
        columns = ("read", "kept", *REASONS)
        width = max([len("pair"), len("total"), *(len(k) for k in self.by_lang)]) + 2
        lines = ["pair".ljust(width) + "".join(f"{c:>{max(10, len(c) + 1)}}" for c in columns)]
        for lang in sorted(self.by_lang):
            counts = self.by_lang[lang]
            lines.append(lang.ljust(width) + "".join(f"{counts[c]:>{max(10, len(c) + 1)}}" for c in columns))
        lines.append("total".ljust(width) + "".join(f"{self.totals[c]:>{max(10, len(c) + 1)}}" for c in columns))
        if self.decontamination_sentences:
            lines.append(f"(decontaminated against {self.decontamination_sentences} distinct evaluation sentences)")
        return "\n".join(lines)


def normalize_text(text: str, nfc: bool = True, fold_whitespace: bool = True) -> str:
    """NFC and whitespace folding (any run of whitespace -> one space, trimmed).

    Example:
        >>> normalize_text("  Cafe\\u0301 \\t au  lait ")
        'Café au lait'
    """
    if nfc:
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split()) if fold_whitespace else text.strip()


def length_units(text: str) -> int:
    """Length in Latin-letter equivalents, comparable across scripts (used by the ratio filter).

    CJK ideographs count 3 (a Chinese character carries about a word), other East Asian wide or
    fullwidth characters (kana, Hangul, fullwidth forms) 2, everything else 1.

    Example:
        >>> length_units("The weather is lovely today."), length_units("今天天气很好。"), length_units("Straße")
        (28, 20, 6)
    """
    if text.isascii():
        return len(text)
    return len(text) + len(_wide_chars().findall(text)) + len(_HAN.findall(text))


@functools.lru_cache(maxsize=1)
def _wide_chars() -> re.Pattern:
    """A character class of every East Asian Wide/Fullwidth code point (built once from unicodedata)."""
    ranges, start = [], None
    for cp in range(0x1100, 0x40000):
        char = chr(cp)
        wide = unicodedata.east_asian_width(char) in "WF" and unicodedata.category(char) != "Cn"
        if wide and start is None:
            start = cp
        elif not wide and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return re.compile("[" + "".join(ranges) + "]")


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=8).digest(), "little")


def evaluation_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (every file inside, recursively, sorted) to a list of files.

    Example:
        >>> len(evaluation_files(["../shared/data/tatoeba"]))  # doctest: +SKIP
        24
    """
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder to decontaminate against: {item}")
    return files


def load_contamination(paths: Sequence[str | os.PathLike], nfc: bool = True, fold_whitespace: bool = True) -> set[int]:
    """Hashes of every normalized sentence in ``paths`` (one a line; TSV lines count each field).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "test.txt")
        >>> _ = open(p, "w").write("A test sentence.\\nAnother\\tone\\n")
        >>> len(load_contamination([p]))
        3
    """
    hashes: set[int] = set()
    for file in evaluation_files(paths):
        for _, line in read_lines(file):
            for field_text in line.split("\t"):
                text = normalize_text(field_text, nfc, fold_whitespace)
                if text:
                    hashes.add(_hash(text))
    return hashes


def clean_pairs(
    pairs: Iterable[Pair], options: CleanOptions | None = None, stats: CleanStats | None = None
) -> Iterator[Pair]:
    """Normalise and filter ``pairs`` (see the module docstring); ``options=None`` only counts.

    Yields the normalised pairs that pass; ``stats`` (if given) counts reads, keeps and drops.

    Example:
        >>> ps = [Pair("Hello  world", "Hallo Welt", "en", "de"), Pair("Hello world", "Hallo Welt", "en", "de"),
        ...       Pair("", "leer", "en", "de")]
        >>> s = CleanStats()
        >>> list(clean_pairs(ps, CleanOptions(), s))
        [Pair(src='Hello world', tgt='Hallo Welt', src_lang='en', tgt_lang='de')]
        >>> s.totals["duplicate"], s.totals["empty"]
        (1, 1)
    """
    if options is None:
        for pair in pairs:
            if stats is not None:
                key = f"{pair.src_lang}-{pair.tgt_lang}"
                stats.add(key, "read")
                stats.add(key, "kept")
            yield pair
        return
    o = options
    contaminated = load_contamination(o.decontaminate, o.nfc, o.fold_whitespace) if o.decontaminate else set()
    if stats is not None:
        stats.decontamination_sentences = len(contaminated)
    seen: set[int] = set()
    for pair in pairs:
        src = normalize_text(pair.src, o.nfc, o.fold_whitespace)
        tgt = normalize_text(pair.tgt, o.nfc, o.fold_whitespace)
        reason = None
        if not src or not tgt:
            reason = "empty"
        elif len(src) < o.min_chars or len(tgt) < o.min_chars or len(src.split(" ")) < o.min_words:
            reason = "too_short"
        elif len(src) > o.max_chars or len(tgt) > o.max_chars:
            reason = "too_long"
        elif o.max_len_ratio is not None:
            short, long = sorted((len(src), len(tgt)))
            # units lie in [len, 3 len]: measure them only when the ratio could fail
            if 3 * long >= o.ratio_min_chars and 3 * long > o.max_len_ratio * short:
                short, long = sorted((length_units(src), length_units(tgt)))
                if long >= o.ratio_min_chars and long > o.max_len_ratio * short:
                    reason = "ratio"
        if reason is None and contaminated and (_hash(src) in contaminated or _hash(tgt) in contaminated):
            reason = "contaminated"
        if reason is None and o.dedupe:
            key = _hash(src, tgt, pair.src_lang, pair.tgt_lang)
            if key in seen:
                reason = "duplicate"
            else:
                seen.add(key)
        if stats is not None:
            lang = f"{pair.src_lang}-{pair.tgt_lang}"
            stats.add(lang, "read")
            stats.add(lang, reason or "kept")
        if reason is None:
            yield Pair(src, tgt, pair.src_lang, pair.tgt_lang)
