"""Semantic textual similarity: Spearman (and Pearson) x100 of cosine similarity against gold scores.

Readers for three layouts, all giving :class:`STSPairs` (sentence1s, sentence2s, gold scores):

* **stsb-multi-mt** (a folder of ``stsb-LANG-SPLIT.csv``; CSV ``sentence1,sentence2,score``,
  RFC 4180 quoting, no header, rows aligned across languages).  Pair ``en-de`` takes sentence1 from
  the English file and sentence2 from the German one (cross-lingual STS as in Reimers & Gurevych 2020).
* **STS Benchmark** original TSV (``sts-test.csv``: genre, file, year, id, score, sentence1,
  sentence2[, sources...]; no quoting), key ``en``.
* **SemEval-2017** (``STS.input.trackN.XX-YY.txt`` = ``sentence1<TAB>sentence2`` with
  ``STS.gs.trackN.XX-YY.txt`` = one score a line; empty gold lines are unscored and skipped) and the
  **STS2017-extended** files (``STS.XX-YY.txt`` = ``sentence1<TAB>sentence2<TAB>score``).

The figure is sentence-transformers' ``EmbeddingSimilarityEvaluator`` cosine Spearman.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlembed.evaluation.base import EmbeddingCache, TaskResult, normalize
from mlembed.files import DataError, read_lines


@dataclass
class STSPairs:
    """Sentence pairs with gold similarity scores (any scale) and where they came from."""

    sentence1: list[str]
    sentence2: list[str]
    scores: list[float]
    source: str = ""

    def __len__(self) -> int:
        return len(self.scores)


def _score(text: str, path: str | os.PathLike, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"score {text!r} is not a number", path, line) from None
    if not np.isfinite(value):
        raise DataError(f"score {text!r} is not a finite number", path, line)
    return value


def read_stsb_csv(path: str | os.PathLike) -> STSPairs:
    """Read one stsb-multi-mt file: CSV ``sentence1,sentence2,score`` (RFC 4180 quoting, no header).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "stsb-en-test.csv")
        >>> _ = open(p, "w").write('A man walks.,"A man, walking.",4.5\\n')
        >>> read_stsb_csv(p).sentence2
        ['A man, walking.']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such STS file: {path}")
    s1, s2, scores = [], [], []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        line = 1
        try:
            for row in reader:
                if len(row) != 3:
                    raise DataError(f"expected 3 CSV fields (sentence1,sentence2,score), got {len(row)}", path, line)
                s1.append(row[0])
                s2.append(row[1])
                scores.append(_score(row[2].strip(), path, line))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise DataError(f"bad CSV: {exc}", path, line) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"invalid UTF-8: {exc.reason}", path) from None
    return STSPairs(s1, s2, scores, str(path))


def read_stsb_multi_mt(directory: str | os.PathLike, pair: str, split: str = "test") -> STSPairs:
    """Pairs ``LANG`` (monolingual) or ``L1-L2`` (sentence1 in L1, sentence2 in L2) from stsb-multi-mt.

    Raises :class:`DataError` when the two files have a different number of rows or different gold
    scores on a row (they are then not aligned).

    Example:
        >>> p = read_stsb_multi_mt("../shared/data/stsb-multi-mt", "en-de")  # doctest: +SKIP
        >>> len(p)  # doctest: +SKIP
        1379
    """
    directory = Path(directory)
    l1, _, l2 = pair.partition("-")
    first = read_stsb_csv(directory / f"stsb-{l1}-{split}.csv")
    if not l2 or l2 == l1:
        return first
    second = read_stsb_csv(directory / f"stsb-{l2}-{split}.csv")
    if len(first) != len(second):
        raise DataError(f"{len(first)} rows but {second.source} has {len(second)}: files not aligned", first.source)
    for row, (a, b) in enumerate(zip(first.scores, second.scores), start=1):
        if abs(a - b) > 1e-6:
            raise DataError(
                f"gold score {a} differs from {b} in {second.source}: files not aligned", first.source, row
            )
    return STSPairs(first.sentence1, second.sentence2, first.scores, f"{first.source}+{second.source}")


def read_sts_benchmark(path: str | os.PathLike) -> STSPairs:
    """Read the original STS Benchmark TSV (genre, file, year, id, score, sentence1, sentence2[, ...]).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "sts-test.csv")
        >>> _ = open(p, "w").write("main-captions\\tMSRvid\\t2012test\\t0001\\t2.500\\tA girl.\\tA woman.\\n")
        >>> read_sts_benchmark(p).scores
        [2.5]
    """
    s1, s2, scores = [], [], []
    for line, text in read_lines(path):
        if not text.strip():
            continue
        cols = text.split("\t")
        if len(cols) < 7:
            raise DataError(
                f"expected >= 7 tab-separated columns (genre, file, year, id, score, s1, s2), got {len(cols)}",
                path,
                line,
            )
        scores.append(_score(cols[4].strip(), path, line))
        s1.append(cols[5])
        s2.append(cols[6])
    return STSPairs(s1, s2, scores, str(path))


def read_semeval_track(input_path: str | os.PathLike, gold_path: str | os.PathLike) -> STSPairs:
    """Read a SemEval STS track: ``STS.input.*.txt`` (s1<TAB>s2) with ``STS.gs.*.txt`` (a score a line).

    Lines with an empty gold score are unscored in SemEval and are skipped.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "i.txt"), "w").write("A cat.\\tA dog.\\nHi.\\tHello.\\n")
        >>> _ = open(os.path.join(d, "g.txt"), "w").write("1.0\\n\\n")
        >>> len(read_semeval_track(os.path.join(d, "i.txt"), os.path.join(d, "g.txt")))
        1
    """
    inputs = list(read_lines(input_path))
    golds = list(read_lines(gold_path))
    if len(inputs) != len(golds):
        raise DataError(f"{len(inputs)} lines but {gold_path} has {len(golds)}: unequal line counts", input_path)
    s1, s2, scores = [], [], []
    for (line, text), (_, gold) in zip(inputs, golds):
        if not gold.strip():
            continue
        cols = text.split("\t")
        if len(cols) < 2:
            raise DataError("expected sentence1<TAB>sentence2", input_path, line)
        scores.append(_score(gold.strip(), gold_path, line))
        s1.append(cols[0])
        s2.append(cols[1])
    return STSPairs(s1, s2, scores, f"{input_path}+{gold_path}")


def read_sts_tsv3(path: str | os.PathLike) -> STSPairs:
    """Read STS2017-extended style ``sentence1<TAB>sentence2<TAB>score`` lines.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "STS.en-de.txt")
        >>> _ = open(p, "w").write("A cat.\\tEine Katze.\\t5.0\\n")
        >>> read_sts_tsv3(p).sentence2
        ['Eine Katze.']
    """
    s1, s2, scores = [], [], []
    for line, text in read_lines(path):
        if not text.strip():
            continue
        cols = text.split("\t")
        if len(cols) != 3:
            raise DataError(f"expected 3 tab-separated columns (s1, s2, score), got {len(cols)}", path, line)
        s1.append(cols[0])
        s2.append(cols[1])
        scores.append(_score(cols[2].strip(), path, line))
    return STSPairs(s1, s2, scores, str(path))


def read_sts17(directory: str | os.PathLike) -> dict[str, STSPairs]:
    """All tracks of a SemEval-2017 / STS2017-extended folder, keyed by language pair (``en-de``).

    A second track with the same pair (SemEval's 4b, ``es-en`` on WMT news) is keyed ``es-en.track4b``.

    Example:
        >>> sorted(read_sts17("STS2017"))  # doctest: +SKIP
        ['ar-ar', 'ar-en', 'en-en', 'es-en', 'es-en.track4b', 'es-es', 'tr-en']
    """
    directory = Path(directory)
    found: dict[str, STSPairs] = {}
    for path in sorted(directory.glob("STS.input.track*.txt")):
        m = re.fullmatch(r"STS\.input\.(track[^.]+)\.([A-Za-z]+-[A-Za-z]+)(?:\.[^.]*)?\.txt", path.name)
        if not m:
            continue
        gold = directory / path.name.replace("STS.input.", "STS.gs.", 1)
        if not gold.is_file():
            raise DataError(f"no gold file {gold.name} next to it", path)
        key = m.group(2) if m.group(2) not in found else f"{m.group(2)}.{m.group(1)}"
        found[key] = read_semeval_track(path, gold)
    for path in sorted(directory.glob("STS.*-*.txt")):
        m = re.fullmatch(r"STS\.([A-Za-z]+-[A-Za-z]+)\.txt", path.name)
        if m and m.group(1) not in found:
            found[m.group(1)] = read_sts_tsv3(path)
    if not found:
        raise DataError("no STS.input.track*.txt / STS.gs.track*.txt or STS.XX-YY.txt files", directory)
    return found


def sts_correlation(emb1: np.ndarray, emb2: np.ndarray, gold: list[float] | np.ndarray) -> dict[str, float]:
    """Spearman and Pearson x100 between row-wise cosine similarity and gold scores.

    Example:
        >>> a = np.array([[1, 0], [1, 0], [1, 0]], dtype="float32")
        >>> b = np.array([[1, 0], [1, 1], [0, 1]], dtype="float32")
        >>> {k: round(v, 1) for k, v in sts_correlation(a, b, [5, 3, 0]).items()}
        {'spearman': 100.0, 'pearson': 99.3}
    """
    from scipy.stats import pearsonr, spearmanr

    cos = (normalize(emb1) * normalize(emb2)).sum(axis=1)
    gold = np.asarray(gold, dtype=np.float64)
    if len(gold) < 2:
        raise ValueError("need at least 2 scored pairs for a correlation")
    return {"spearman": float(spearmanr(cos, gold)[0] * 100), "pearson": float(pearsonr(cos, gold)[0] * 100)}


class STSTask:
    """STS on stsb-multi-mt (``sts:DIR:PAIRS[:split]``), the STS Benchmark TSV (``sts:FILE``) or
    SemEval-2017 / STS2017-extended (``sts:DIR[:PAIRS]``).

    Example:
        >>> task = STSTask("../shared/data/stsb-multi-mt", ["en", "en-de"], "test")  # doctest: +SKIP
        >>> task.evaluate(cache).scores["en-de"]["spearman"]  # doctest: +SKIP
    """

    name = "sts"

    def __init__(self, where: str, pairs: list[str] | None = None, split: str = "test", spec: str | None = None):
        self.where, self.pairs, self.split = where, pairs or [], split
        self.spec = spec or f"sts:{where}"
        self._data: dict[str, STSPairs] | None = None

    def data(self) -> dict[str, STSPairs]:
        """The pairs of every language key, read once (layout detected from what ``where`` holds)."""
        if self._data is None:
            where = Path(self.where)
            if where.is_file():
                self._data = {"en": read_sts_benchmark(where)}
            elif not where.is_dir():
                raise FileNotFoundError(f"no such STS file or folder: {where}")
            elif any(where.glob("stsb-*-*.csv")):
                if not self.pairs:
                    raise DataError("name the pairs to evaluate, e.g. sts:DIR:en,de,en-de:test", where)
                self._data = {p: read_stsb_multi_mt(where, p, self.split) for p in self.pairs}
            else:
                tracks = read_sts17(where)
                missing = [p for p in self.pairs if p not in tracks]
                if missing:
                    raise DataError(f"no track for {missing}; found {sorted(tracks)}", where)
                self._data = {p: tracks[p] for p in self.pairs} if self.pairs else tracks
        return self._data

    def evaluate(self, cache: EmbeddingCache) -> TaskResult:
        scores = {}
        for key, pairs in self.data().items():
            scores[key] = sts_correlation(cache.encode(pairs.sentence1), cache.encode(pairs.sentence2), pairs.scores)
        meta = {"pairs": {k: len(v) for k, v in self.data().items()}, "similarity": "cosine"}
        return TaskResult(self.name, self.spec, self.split, "spearman", scores, meta)
