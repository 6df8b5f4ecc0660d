"""Cleaning parallel data: normalisation, length filters, exact dedupe and decontamination.

:func:`clean_pairs` streams (in batches of a few thousand pairs); the memory it keeps is one
64-bit hash per distinct pair kept, 8 bytes each (:class:`HashSet64`, for dedupe), and one per
distinct evaluation sentence (for decontamination), never the strings.

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
* ``wrong_language`` (only with ``check_lang``): a side is not in its pair's language by language
  identification (:mod:`mlembed.langid`: the language is not among the 3 most likely); a side whose language
  the detector does not know is not judged;
* ``contaminated``: either side equals (after the same normalisation) a line of the
  ``decontaminate`` files;
* ``duplicate``: the same (source, target, languages) was kept before.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlembed.data.base import Pair, batched
from mlembed.files import read_lines
from mlembed.languages import length_units

_BATCH = 2048  # pairs cleaned per batch (dedupe is vectorised per batch)
REASONS = ("empty", "too_short", "too_long", "ratio", "wrong_language", "contaminated", "duplicate")


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
    check_lang: bool = False


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
        # wrong_language only when language identification was asked for (and dropped something)
        columns = ("read", "kept", *(r for r in REASONS if r != "wrong_language" or self.totals[r]))
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


class HashSet64:
    """A set of 64-bit hashes at 8 bytes each: sorted numpy runs merged like a binary counter.

    A Python ``set`` of ints costs ~60 bytes an entry (0.6 GB for 10M pairs); this costs ~8-16.

    Example:
        >>> s = HashSet64()
        >>> s.add(np.array([5, 7, 5], dtype=np.uint64)).tolist(), s.add(np.array([7, 9], dtype=np.uint64)).tolist()
        ([True, True, False], [False, True])
        >>> len(s)
        3
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(run.size for run in self._runs)

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Add ``keys`` in order; return a mask, True where a key was not in the set (nor earlier in ``keys``)."""
        keys = np.asarray(keys, dtype=np.uint64)
        unique, first = np.unique(keys, return_index=True)
        fresh = np.ones(unique.size, dtype=bool)
        for run in self._runs:
            pos = np.minimum(np.searchsorted(run, unique), run.size - 1)
            fresh &= run[pos] != unique
        mask = np.zeros(keys.size, dtype=bool)
        mask[first[fresh]] = True
        run = unique[fresh]
        while self._runs and self._runs[-1].size <= run.size:  # keeps O(log n) runs, sizes decreasing
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")  # timsort: merges the 2 runs
        if run.size:
            self._runs.append(run)
        return mask


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
    contaminated = (
        load_contamination(options.decontaminate, options.nfc, options.fold_whitespace)
        if options.decontaminate
        else set()
    )
    if stats is not None:
        stats.decontamination_sentences = len(contaminated)
    seen = HashSet64() if options.dedupe else None
    for batch in batched(pairs, _BATCH):
        checked = [_check(pair, options, contaminated) for pair in batch]
        if seen is not None:
            candidates = [i for i, (_, reason) in enumerate(checked) if reason is None]
            keys = np.fromiter(
                (
                    _hash(checked[i][0].src, checked[i][0].tgt, checked[i][0].src_lang, checked[i][0].tgt_lang)
                    for i in candidates
                ),
                np.uint64,
                len(candidates),
            )
            for i, new in zip(candidates, seen.add(keys)):
                if not new:
                    checked[i] = (checked[i][0], "duplicate")
        for cleaned, reason in checked:
            if stats is not None:
                lang = f"{cleaned.src_lang}-{cleaned.tgt_lang}"
                stats.add(lang, "read")
                stats.add(lang, reason or "kept")
            if reason is None:
                yield cleaned


def _check(pair: Pair, o: CleanOptions, contaminated: set[int]) -> tuple[Pair, str | None]:
    """The normalised pair and the first rule it fails (None: passes all but dedupe)."""
    src = normalize_text(pair.src, o.nfc, o.fold_whitespace)
    tgt = normalize_text(pair.tgt, o.nfc, o.fold_whitespace)
    cleaned = Pair(src, tgt, pair.src_lang, pair.tgt_lang)
    if not src or not tgt:
        return cleaned, "empty"
    if len(src) < o.min_chars or len(tgt) < o.min_chars or len(src.split(" ")) < o.min_words:
        return cleaned, "too_short"
    if len(src) > o.max_chars or len(tgt) > o.max_chars:
        return cleaned, "too_long"
    if o.max_len_ratio is not None:
        short, long = sorted((length_units(src), length_units(tgt)))
        if long >= o.ratio_min_chars and long > o.max_len_ratio * short:
            return cleaned, "ratio"
    if o.check_lang:
        from mlembed.langid import in_language

        if in_language(src, pair.src_lang) is False or in_language(tgt, pair.tgt_lang) is False:
            return cleaned, "wrong_language"
    if contaminated and (_hash(src) in contaminated or _hash(tgt) in contaminated):
        return cleaned, "contaminated"
    return cleaned, None
