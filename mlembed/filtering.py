"""Scoring and cleaning a parallel corpus (``mlembed filter``): every pair scored by meaning, language and
length, and dropped with its reason when a score says it is not a translation.

Per pair (``source<TAB>target``, one language pair a file):

* ``cosine`` of the two sides' vectors, and ``margin``: the cosine divided by the mean similarity of each side
  to its ``k`` nearest neighbours on the other side *of the same corpus* (the ratio margin of
  :mod:`mlembed.margin`, the code ``mine`` uses; Artetxe & Schwenk 2019). A misaligned pair has a low cosine
  for its neighbourhood, whatever the languages' general similarity;
* the most likely language of each side and the rank of its claimed language (:mod:`mlembed.langid`);
* ``length``: how far the pair's log length ratio (:func:`mlembed.languages.length_units`) lies from the
  corpus's own median ratio, so German's longer sentences are not a fault.

A pair is dropped for the first reason that holds, in this order (:data:`REASONS`): ``malformed`` (a line
without exactly two fields, only with ``on_bad_line="skip"``), ``empty``, ``no_text`` (a side without a
letter once URLs and e-mail addresses are taken out: numbers, URLs, punctuation), ``copy`` (the target
equals the source but for case, spaces, punctuation and accents), ``duplicate`` (the same pair but for
case, spaces, punctuation, accents and the digits of numbers: the first one is kept), ``wrong_language``
(a side long enough to judge whose claimed language is not among the detector's ``lang_top`` most likely),
``length`` and ``low_margin`` (or ``low_score`` under ``keep_fraction``). The thresholds'
defaults (:class:`FilterThresholds`) were chosen once, by ``benchmarks/filter_quality.py --calibrate`` on
noisy corpora of languages its benchmark does not use; they are score thresholds, not a share kept.

Memory is bounded by ``block_size``: the corpus is read in blocks of that many pairs, each scored against
itself (its margin neighbourhoods come from the block) and saved to the work folder, so a killed run resumes
at its last finished block; then one streaming pass decides and writes. What stays in memory across blocks
is 8 bytes per distinct pair (the duplicate check).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import time
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.data.cleaning import HashSet64, normalize_text
from mlembed.data.output import tsv_field
from mlembed.files import DataError, OnBadLine, atomic_open, file_sha256, read_lines
from mlembed.languages import length_units, normalize_lang

__all__ = ["REASONS", "FilterThresholds", "FilterReport", "filter_file"]

logger = logging.getLogger(__name__)

REASONS = (
    "malformed",
    "empty",
    "no_text",
    "copy",
    "duplicate",
    "wrong_language",
    "length",
    "low_margin",
    "low_score",
)
#: the columns of the scores TSV, after the header line
COLUMNS = (
    "line",
    "source",
    "target",
    "cosine",
    "margin",
    "length",
    "source_lang",
    "source_lang_rank",
    "target_lang",
    "target_lang_rank",
    "reason",
)
_NUMERIC = ("line", "cosine", "margin", "length", "units", "src_rank", "tgt_rank")
#: a language the detector gives (top-1) for at least this share of a side's lines, while it ranks the claimed one
#: within PLAUSIBLE_RANK (median), is one it confuses with the claimed language (Croatian for Slovenian): not wrong
PLAUSIBLE_SHARE = 0.02
PLAUSIBLE_RANK = 5
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class FilterThresholds:
    """When a score drops a pair. Defaults from ``benchmarks/filter_quality.py --calibrate`` (languages the
    benchmark does not use; ``benchmarks/results/filter_quality.json``, ``calibration``).

    Attributes:
        margin: drop a pair whose ratio margin is below this.
        length: drop a pair whose log length ratio is further than this from the corpus median (1.1 = about 3x)...
        length_min_units: ...when its longer side has at least this many length units (short lines vary a lot).
        lang_top: a side is in its language when that language is among the detector's ``lang_top`` most likely...
        lang_min_units: ...judged only on sides of at least this many length units.

    Example:
        >>> FilterThresholds(margin=1.0).lang_top
        3
    """

    margin: float = 0.94
    length: float = 0.7
    length_min_units: int = 10
    lang_top: int = 3
    lang_min_units: int = 15


@dataclass
class FilterReport:
    """What :func:`filter_file` did: pairs read, kept, dropped per reason, the languages, and the seconds.

    Example:
        >>> r = FilterReport(read=10, kept=7, dropped=Counter(copy=3)); r.summary().splitlines()[0]
        'read 10 pairs, kept 7 (70.0 %), dropped 3'
    """

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)
    languages: tuple[str, str] = ("", "")
    margin_cut: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    over_window: int = 0

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"read {self.read} pairs, kept {self.kept} ({100 * self.kept / max(self.read, 1):.1f} %), "
            f"dropped {self.read - self.kept}"
        ]
        lines += [f"  {reason}: {self.dropped[reason]}" for reason in REASONS if self.dropped[reason]]
        lines += [f"  kept though {reason}: {n} (not in --drop)" for reason, n in self.flagged.items()]
        if self.over_window:
            lines.append(f"  ({self.over_window} sides over the model's window were scored on their first window)")
        return "\n".join(lines)


def fold_text(text: str, digits: bool = True) -> str:
    """The letters and digits of ``text``, casefolded, accents removed (``digits=False``: each number as ``0``):
    what ``copy`` and ``duplicate`` compare.

    Example:
        >>> fold_text("Café, 12 Uhr!"), fold_text("Café, 12 Uhr!", digits=False)
        ('cafe12uhr', 'cafe0uhr')
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if not digits:
        decomposed = _DIGITS.sub("0", decomposed)
    return "".join(ch for ch in decomposed if ch.isalnum())


def has_text(text: str) -> bool:
    """Whether ``text`` has a letter once URLs and e-mail addresses are taken out (``no_text`` when not).

    Example:
        >>> has_text("https://example.org/2019"), has_text("12,5 %"), has_text("Seite 3")
        (False, False, True)
    """
    return any(ch.isalpha() for ch in _URL.sub(" ", text))


_MALFORMED = "\x00malformed"


def _rows(path: Path, header: bool, on_bad_line: OnBadLine) -> Iterator[tuple[int, str, str]]:
    """``(line number, source, target)`` of every line, normalised (:func:`mlembed.data.cleaning.normalize_text`);
    with ``on_bad_line="skip"`` a line that is not two fields or not UTF-8 comes as a malformed row, so that it is
    listed, never lost."""
    expected = 2 if header else 1
    for number, text in read_lines(path, on_bad_line):
        if number < expected:
            continue
        for missing in range(expected, number):  # skipped as invalid UTF-8
            yield missing, _MALFORMED, ""
        expected = number + 1
        fields = text.split("\t")
        if len(fields) != 2:
            if on_bad_line != "skip":
                raise DataError(
                    f"expected 2 tab-separated fields (source, target), got {len(fields)} (use --on-bad-line skip to "
                    "keep going: such lines are then listed as malformed)",
                    path,
                    number,
                )
            yield number, _MALFORMED, ""
            continue
        yield number, normalize_text(fields[0]), normalize_text(fields[1])


def _take(rows: Iterator[tuple[int, str, str]], size: int) -> tuple[list[int], list[str], list[str]]:
    numbers, src, tgt = [], [], []
    for number, a, b in rows:
        numbers.append(number)
        src.append(a)
        tgt.append(b)
        if len(numbers) == size:
            break
    return numbers, src, tgt


def _header(path: Path) -> tuple[str, str] | None:
    """The languages of a ``eng<TAB>deu`` header line, as tatoeba-challenge files have, else None."""
    from mlembed.data.tsv import _header_langs

    first = next(read_lines(path), (0, ""))[1]
    langs = _header_langs(first.split("\t"))
    return (langs[0], langs[1]) if langs and len(langs) == 2 else None


def _detect(texts: list[str], side: str, path: Path) -> str:
    from mlembed.langid import identify

    sample = [t for t in texts[:2000] if length_units(t) >= 15] or [t for t in texts[:2000] if t]
    counts = Counter(identify(t) for t in sample)
    if not counts:
        raise DataError(f"no text on the {side} side to identify its language; pass --{side}-lang", path)
    lang, n = counts.most_common(1)[0]
    if n < 0.5 * len(sample):
        top = ", ".join(f"{code} {100 * c / len(sample):.0f} %" for code, c in counts.most_common(3))
        raise DataError(f"cannot tell the language of the {side} side ({top}); pass --{side}-lang", path)
    logger.info(f"{path}: {side} side identified as {lang} ({100 * n / len(sample):.0f} % of {len(sample)} lines)")
    return lang


def _score_block(
    src: list[str],
    tgt: list[str],
    langs: tuple[str, str],
    model: Any,
    k: int,
    memory_budget: Any,
    report: Any,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Every score of one block of pairs (rows with an empty side get NaN cosine and margin)."""
    from mlembed.encoding import encode
    from mlembed.knn import MiningOptions, knn_both_ways
    from mlembed.langid import language_rank
    from mlembed.margin import neighbourhood_means

    n = len(src)
    out = {name: np.full(n, np.nan, dtype=np.float32) for name in ("cosine", "margin", "length")}
    ok = np.array([bool(a) and bool(b) and a != _MALFORMED for a, b in zip(src, tgt)], dtype=bool)
    rows = np.flatnonzero(ok)
    if len(rows):
        vectors, index = [], []
        for texts in (src, tgt):  # each distinct sentence once: a repeated line must not fill its own neighbourhood
            distinct: dict[str, int] = {}
            ids = np.array([distinct.setdefault(texts[i], len(distinct)) for i in rows], dtype=np.int64)
            vectors.append(
                encode(
                    list(distinct), model, normalize=True, overflow="truncate", report=report, show_progress=progress
                )
            )
            index.append(ids)
        fwd, bwd = knn_both_ways(vectors[0], vectors[1], MiningOptions(k=k, memory_budget=memory_budget))
        src_mean, tgt_mean = neighbourhood_means(fwd), neighbourhood_means(bwd)
        cos = np.einsum("ij,ij->i", vectors[0][index[0]], vectors[1][index[1]]).astype(np.float32)
        out["cosine"][rows] = cos
        out["margin"][rows] = cos / ((src_mean[index[0]] + tgt_mean[index[1]]) / np.float32(2))
        units = np.array([[length_units(src[i]), length_units(tgt[i])] for i in rows], dtype=np.float64)
        ratio = np.log(np.maximum(units[:, 1], 1) / np.maximum(units[:, 0], 1))
        out["length"][rows] = ratio - np.median(ratio)
    out["units"] = np.array([max(length_units(a), length_units(b)) for a, b in zip(src, tgt)], dtype=np.int32)
    for side, texts, lang in (("src", src, langs[0]), ("tgt", tgt, langs[1])):
        detected, ranks = [], np.zeros(n, dtype=np.int32)  # rank 0: not judged (empty, or a language not known)
        for i, text in enumerate(texts):
            if text and ok[i]:
                top, rank = language_rank(text, lang)
                detected.append(top)
                ranks[i] = rank or 0
            else:
                detected.append("")
        out[f"{side}_rank"] = ranks
        out[f"{side}_lang"] = np.array(detected, dtype="U12")
        out[f"{side}_units"] = np.array([length_units(t) for t in texts], dtype=np.int32)
    return out


def plausible_languages(cols: dict[str, np.ndarray], langs: tuple[str, str], t: FilterThresholds) -> dict[str, set]:
    """Per side, the languages the detector confuses with the claimed one on this corpus (see PLAUSIBLE_SHARE):
    a line detected as one of them is not dropped as ``wrong_language``. The other side's language never is.

    Example:
        >>> cols = {"src_lang": np.array(["en"] * 50), "src_rank": np.ones(50), "src_units": np.full(50, 30),
        ...         "tgt_lang": np.array(["hr"] * 20 + ["sl"] * 29 + ["fr"]), "tgt_rank": np.array([2] * 49 + [9]),
        ...         "tgt_units": np.full(50, 30)}
        >>> plausible_languages(cols, ("en", "sl"), FilterThresholds())["tgt"] == {"hr", "sl"}
        True
    """
    out = {}
    for side, other in (("src", langs[1]), ("tgt", langs[0])):
        judged = (cols[f"{side}_units"] >= t.lang_min_units) & (cols[f"{side}_lang"] != "")
        detected, ranks = cols[f"{side}_lang"][judged], cols[f"{side}_rank"][judged]
        ranks = np.where(ranks > 0, ranks, 10**6)
        found = set()
        for lang in np.unique(detected):
            mine = detected == lang
            if mine.mean() >= PLAUSIBLE_SHARE and np.median(ranks[mine]) <= PLAUSIBLE_RANK:
                found.add(str(lang))
        out[side] = found - {other.split("-")[0]}
    return out


def _reason(
    src: str,
    tgt: str,
    scores: dict[str, Any],
    t: FilterThresholds,
    seen: HashSet64,
    margin_cut: float,
    plausible: dict[str, set[str]],
    low: str = "low_margin",
    drop: frozenset[str] = frozenset(REASONS),
) -> str | None:
    """Why the pair is dropped: the first reason that holds among ``drop``; None when none holds, ``kept:REASON``
    when only reasons outside ``drop`` hold (the first of them). ``seen`` takes the pair's duplicate key."""
    if src == _MALFORMED:
        return "malformed"
    if not src or not tgt:
        return "empty"
    flagged = None
    for reason, holds in _checks(src, tgt, scores, t, seen, margin_cut, plausible, low):
        if holds:
            if reason in drop:
                return reason
            flagged = flagged or reason
    return None if flagged is None else f"kept:{flagged}"


def _checks(
    src: str,
    tgt: str,
    scores: dict[str, Any],
    t: FilterThresholds,
    seen: HashSet64,
    margin_cut: float,
    plausible: dict[str, set[str]],
    low: str,
) -> Iterator[tuple[str, bool]]:
    """Each reason after ``empty``, in order, and whether it holds (computed as asked: a dropped pair stops them)."""
    yield "no_text", not has_text(src) or not has_text(tgt)
    yield "copy", fold_text(src, True) == fold_text(tgt, True)
    key = fold_text(src, False) + "\t" + fold_text(tgt, False)
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    yield "duplicate", not seen.add(np.array([digest], dtype=np.uint64))[0]
    wrong = any(
        int(scores[f"{side}_rank"]) > t.lang_top
        and int(scores[f"{side}_units"]) >= t.lang_min_units
        and str(scores[f"{side}_lang"]) not in plausible[side]
        for side in ("src", "tgt")
    )
    yield "wrong_language", wrong
    yield "length", abs(float(scores["length"])) > t.length and int(scores["units"]) >= t.length_min_units
    yield low, not float(scores["margin"]) >= margin_cut


def filter_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    kept: str | os.PathLike | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    model: Any = "e5-small",
    thresholds: FilterThresholds | None = None,
    keep_fraction: float | None = None,
    k: int = 4,
    block_size: int = 100_000,
    memory_budget: int | str | None = None,
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    on_bad_line: OnBadLine = "error",
    show_progress: bool = True,
    drop: Collection[str] = REASONS,
) -> FilterReport:
    """Score every pair of a parallel TSV (``source<TAB>target``) and write the scores and the kept pairs.

    Args:
        path: the corpus, one pair a line; a first line naming two languages (``eng<TAB>deu``) is read as a header.
        output: the scores TSV: a header, then every pair with :data:`COLUMNS` (``reason`` empty when kept).
        kept: also write the kept pairs, ``source<TAB>target``, ready for ``mlembed distill --data tsv:FILE``.
        src_lang, tgt_lang: the sides' languages (default: the header, else the file name as ``x.en-de.tsv``, else
            identified from the first block).
        model: a multilingual model (name, folder or loaded); ``e5-small`` by default (no download needed).
        thresholds: see :class:`FilterThresholds`.
        keep_fraction: instead of the margin threshold, keep this share of all pairs, best margins first (among the
            pairs no other reason drops); the rest are dropped as ``low_score``.
        k: margin neighbourhood size. block_size: pairs scored together (memory grows with it).
        memory_budget: of each block's k-NN (see :func:`mlembed.knn.knn_both_ways`).
        workdir: where the scored blocks go (default ``OUTPUT.work``; removed after success); ``resume`` continues
            a killed run from it.
        drop: the reasons that drop a pair (default: all); a pair for which only other reasons hold is kept, its
            ``reason`` written as ``kept:REASON`` (e.g. ``drop=("no_text", "length", "low_margin")`` keeps
            untranslated copies, duplicates and other-language sides, which distillation can still learn from).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "x.en-de.tsv")
        >>> _ = open(p, "w").write("The cat sleeps.\\tDie Katze schläft.\\nThe cat sleeps.\\tThe cat sleeps.\\n")
        >>> r = filter_file(p, os.path.join(d, "scores.tsv"), show_progress=False)  # doctest: +SKIP
        >>> r.kept, dict(r.dropped)  # doctest: +SKIP
        (1, {'copy': 1})
    """
    from tqdm.auto import tqdm

    from mlembed.data.base import count_lines, langs_from_filename
    from mlembed.models import fingerprint, load_model
    from mlembed.windows import LengthReport, model_window

    path, output = Path(path), Path(output)
    t = thresholds or FilterThresholds()
    if keep_fraction is not None and not 0 < keep_fraction <= 1:
        raise ValueError(f"--keep-fraction {keep_fraction}: expected a share in (0, 1]")
    active = frozenset(drop) | {"malformed", "empty"}
    if not active <= set(REASONS):
        raise ValueError(
            f"--drop {','.join(sorted(set(drop) - set(REASONS)))}: expected reasons among {', '.join(REASONS)}"
        )
    if block_size < 2 or k < 1:
        raise ValueError(f"--block-size {block_size} / --k {k}: expected at least 2 / 1")
    if not path.is_file():
        raise DataError("no such file (expected a TSV of pairs, source<TAB>target)", path)
    work = Path(workdir) if workdir is not None else output.with_name(output.name + ".work")
    if work.exists() and not resume and any(work.glob("block-*.npz")):
        raise DataError("holds an unfinished run: pass --resume to continue it, or remove it", work)
    work.mkdir(parents=True, exist_ok=True)
    report = FilterReport()
    clock = time.monotonic()
    header = _header(path)
    named = header or langs_from_filename(path)
    langs = [normalize_lang(src_lang) if src_lang else None, normalize_lang(tgt_lang) if tgt_lang else None]
    for i in range(2):
        if langs[i] is None and named:
            langs[i] = named[i]
    total = count_lines(path) - bool(header)
    fp = fingerprint(model)
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    lengths = LengthReport("truncate", model_window(model))
    sha = file_sha256(path)
    settings = {"model": fp, "k": k, "block_size": block_size, "source_sha256": sha}
    rows = _rows(path, bool(header), on_bad_line)
    blocks = []
    with tqdm(total=total, unit="pair", desc=f"score {path.name}", disable=not show_progress) as bar:
        for b in itertools.count():
            part, stamp = work / f"block-{b:05d}.npz", work / f"block-{b:05d}.json"
            numbers, src, tgt = _take(rows, block_size)
            if not numbers:
                break
            if b == 0:
                langs = [
                    lang or _detect(texts, side, path) for lang, texts, side in zip(langs, (src, tgt), ("src", "tgt"))
                ]
            want = {**settings, "block": b, "langs": langs}
            if resume and part.exists() and stamp.exists() and json.loads(stamp.read_text()).get("settings") == want:
                lengths.over += json.loads(stamp.read_text()).get("over_window", 0)
            else:
                before = lengths.over
                scores = _score_block(src, tgt, (langs[0], langs[1]), model, k, memory_budget, lengths, show_progress)
                scores["line"] = np.array(numbers, dtype=np.int64)
                with atomic_open(part, "wb", encoding=None) as fh:
                    np.savez(fh, **scores)
                with atomic_open(stamp) as fh:
                    json.dump({"settings": want, "over_window": lengths.over - before}, fh)
            blocks.append(part)
            bar.update(len(numbers))
    report.languages = (str(langs[0]), str(langs[1])) if blocks else tuple(lang or "" for lang in langs)
    report.seconds["score"] = round(time.monotonic() - clock, 2)
    report.over_window = lengths.over
    clock = time.monotonic()
    cut = t.margin
    if keep_fraction is not None:
        cut = _fraction_cut(
            _rows(path, bool(header), on_bad_line), blocks, t, keep_fraction, (langs[0], langs[1]), active
        )
    report.margin_cut = cut
    seen = HashSet64()
    with atomic_open(output) as out, atomic_open(kept) if kept else nullcontext() as keep:
        out.write("\t".join(COLUMNS) + "\n")
        rows = _rows(path, bool(header), on_bad_line)
        for part in tqdm(blocks, desc="decide", unit="block", disable=not show_progress or len(blocks) < 2):
            with np.load(part) as data:
                cols = {key: data[key] for key in data.files}
            numbers, src, tgt = _take(rows, len(cols["line"]))
            plausible = plausible_languages(cols, (langs[0], langs[1]), t)
            low = "low_margin" if keep_fraction is None else "low_score"
            for i, (number, a, b) in enumerate(zip(numbers, src, tgt)):
                row = {key: col[i] for key, col in cols.items()}
                reason = _reason(a, b, row, t, seen, cut, plausible, low, active)
                report.read += 1
                if reason is None or reason.startswith("kept:"):
                    report.kept += 1
                    if reason:
                        report.flagged[reason[5:]] += 1
                    if keep is not None:
                        keep.write(f"{tsv_field(a)}\t{tsv_field(b)}\n")
                else:
                    report.dropped[reason] += 1
                out.write(_row(number, a, b, row, langs, reason))
    report.seconds["decide"] = round(time.monotonic() - clock, 2)
    shutil.rmtree(work, ignore_errors=True)
    logger.info(report.summary())
    return report


def _row(number: int, src: str, tgt: str, s: dict[str, Any], langs: list, reason: str | None) -> str:
    def num(value: Any) -> str:
        return "" if not np.isfinite(value) else f"{float(value):.4f}"

    malformed = src == _MALFORMED
    return (
        "\t".join(
            [
                str(number),
                "" if malformed else tsv_field(src),
                tsv_field(tgt),
                num(s["cosine"]),
                num(s["margin"]),
                num(s["length"]),
                str(s["src_lang"]),
                str(int(s["src_rank"]) or ""),
                str(s["tgt_lang"]),
                str(int(s["tgt_rank"]) or ""),
                reason or "",
            ]
        )
        + "\n"
    )


def _fraction_cut(
    rows: Iterator[tuple[int, str, str]],
    blocks: list[Path],
    t: FilterThresholds,
    fraction: float,
    langs: tuple,
    active: frozenset[str],
) -> float:
    """The margin above which ``fraction`` of all pairs are kept, among those no other reason drops (a histogram
    over the blocks' margins: memory does not grow with the corpus)."""
    edges = np.linspace(-1.0, 3.0, 400_001)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    seen = HashSet64()
    total = 0
    for part in blocks:
        with np.load(part) as data:
            cols = {key: data[key] for key in data.files}
        _, src, tgt = _take(rows, len(cols["line"]))
        total += len(src)
        plausible = plausible_languages(cols, langs, t)
        margins = [
            float(cols["margin"][i])
            for i, (a, b) in enumerate(zip(src, tgt))
            if (
                _reason(a, b, {key: col[i] for key, col in cols.items()}, t, seen, -np.inf, plausible, "", active)
                or "kept:"
            ).startswith("kept:")
        ]
        counts += np.histogram(np.clip(margins, -1.0, 3.0), bins=edges)[0]
    want = int(round(fraction * total))
    above = np.cumsum(counts[::-1])[::-1]  # pairs at or above each bin's lower edge
    fits = np.flatnonzero(above <= want)
    return float(edges[fits[0]]) if len(fits) else float(edges[-1])
