"""Sentence alignment of documents that translate each other: beads 1-1, 1-2, 2-1, ..., and omissions, in order.

The method (after Vecalign, Thompson & Koehn 2019, and Bertalign, Liu & Zhu 2022; written here on NumPy and FAISS):

1. **Vectors.** Each sentence is encoded once. A run of ``k`` consecutive sentences (``k`` up to the largest
   bead side) gets the mean of its sentences' vectors, normalised, without encoding the concatenation
   (``overlaps="encode"`` encodes it instead). Each sentence weighs the same (``weights="uniform"``): weighted
   by tokens, a short line of debris (a caption, OCR remains) joins a neighbour's bead almost for free.
2. **Cost of a bead** of ``a`` source and ``b`` target sentences: ``2 (1 - cos) / (n(x) + n(y)) * a * b``, where
   ``n(x)`` is ``x``'s mean cosine distance to random sentences of the other document. The normalisation makes a
   cost mean the same for a generic and a specific sentence; the factor ``a * b`` keeps long beads from
   looking cheap. A sentence left out costs ``skip``, a quantile of the 1-1 costs near the path.
3. **Two steps, linear in length.** First, anchors: each source sentence's nearest target sentences (FAISS),
   scored against their neighbourhoods, and the heaviest chain of them increasing on both sides. Then the
   dynamic programme over every bead type, only in a band around the line through the anchors (wide where
   anchors jump, so a long omission stays reachable). Memory and time grow with ``n * band``.

Example:
    >>> from mlembed.models import load_model
    >>> src = ["The cat sleeps on the sofa.", "It is raining today, and the streets are wet."]
    >>> tgt = ["The cat is asleep on the couch.", "Today it rains.", "The streets are wet."]
    >>> [(b.src, b.tgt) for b in align(src, tgt, load_model("minilm-en"))]
    [((0,), (0,)), ((1,), (1, 2))]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

# defaults chosen on Text+Berg dev, never its test sets: benchmarks/align_quality.py records the dev grid, where
# they are within 0.003 strict F1 of its best row (0.851 vs 0.854) with a smaller bead limit
#: the largest bead, source plus target sentences
MAX_BEAD = 5
#: the quantile of 1-1 costs near the path that leaving a sentence out costs
SKIP_QUANTILE = 0.2
#: weight of a bead's squared log length ratio, against the documents' own
LENGTH_WEIGHT = 0.5
#: how a run's sentences weigh in its vector: ``uniform`` or ``tokens``
WEIGHTS = "uniform"
#: target sentences each side of the anchor line that the full search looks at
BAND = 12
#: random sentences of the other document each vector's normalisation is measured against
NORM_SAMPLES = 256


@dataclass(frozen=True)
class Bead:
    """Source and target sentence indexes aligned together (either may be empty), and the bead's cost."""

    src: tuple[int, ...]
    tgt: tuple[int, ...]
    cost: float

    def format(self) -> str:
        """The bead format of Vecalign and Bertalign.

        Example:
            >>> Bead((0,), (0, 1), 0.25).format()
            '[0]:[0, 1]:0.250000'
        """
        return f"[{', '.join(map(str, self.src))}]:[{', '.join(map(str, self.tgt))}]:{self.cost:.6f}"


def bead_types(max_bead: int = MAX_BEAD) -> list[tuple[int, int]]:
    """Every ``(a, b)`` with ``a, b >= 1`` and ``a + b <= max_bead``, 1-1 first.

    Example:
        >>> bead_types(4)
        [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1)]
    """
    if max_bead < 2:
        raise ValueError(f"max_bead must be >= 2 (a 1-1 bead), got {max_bead}")
    return [(a, b) for a in range(1, max_bead) for b in range(1, max_bead) if a + b <= max_bead]


def overlap_vectors(vectors: np.ndarray, weights: np.ndarray, longest: int) -> np.ndarray:
    """``(longest, n, d)``: row ``k - 1`` holds, for each start ``i``, the normalised weighted sum of the vectors
    of sentences ``i .. i + k - 1`` (zeros where the run would pass the end).

    Example:
        >>> v = overlap_vectors(np.eye(3, dtype=np.float32), np.ones(3), 2)
        >>> [round(float(x), 3) for x in v[1, 0]]
        [0.707, 0.707, 0.0]
    """
    n, d = vectors.shape
    weighted = vectors * weights[:, None]
    out = np.zeros((longest, n, d), dtype=np.float32)
    total = np.zeros((n, d), dtype=np.float32)
    for k in range(longest):
        if k < n:
            total[: n - k] += weighted[k:]
            out[k, : n - k] = total[: n - k]
    norms = np.linalg.norm(out, axis=2, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def encode_overlaps(
    sentences: Sequence[str],
    model: Any,
    longest: int,
    overlaps: Literal["mean", "encode"] = "mean",
    precision: str = "auto",
    weights: Literal["uniform", "tokens"] = WEIGHTS,
) -> np.ndarray:
    """The ``(longest, n, d)`` overlap vectors of one document (see :func:`overlap_vectors`).

    ``mean`` encodes each sentence once and averages (each sentence weighing the same, or by its ``tokens``);
    ``encode`` encodes every concatenation (``longest`` times the work). Sentences and concatenations over the
    model's window are read whole in windows (``split``)."""
    from mlembed.encoding import encode
    from mlembed.windows import token_counts

    n = len(sentences)
    if overlaps not in ("mean", "encode") or weights not in ("uniform", "tokens"):
        raise ValueError(f"overlaps must be mean or encode, weights uniform or tokens: got {overlaps!r}, {weights!r}")
    if overlaps == "mean":
        vectors = encode(list(sentences), model, normalize=True, precision=precision, show_progress=n > 2000)
        if weights == "uniform":
            return overlap_vectors(vectors, np.ones(n, dtype=np.float32), longest)
        counts = token_counts(model, list(sentences))
        tokens = counts if counts is not None else np.array([len(s.split()) for s in sentences])
        return overlap_vectors(vectors, np.maximum(tokens.astype(np.float32), 1.0), longest)
    rows = []
    for k in range(1, longest + 1):
        texts = [" ".join(sentences[i : i + k]) for i in range(max(n - k + 1, 0))]
        vec = encode(texts, model, normalize=True, precision=precision) if texts else None
        rows.append(vec)
    d = next(v.shape[1] for v in rows if v is not None)
    out = np.zeros((longest, n, d), dtype=np.float32)
    for k, vec in enumerate(rows):
        if vec is not None:
            out[k, : len(vec)] = vec
    return out


def normalizers(own: np.ndarray, other: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(longest, n)``: each overlap vector's mean cosine distance to random overlaps of the other document.

    Example:
        >>> v = overlap_vectors(np.eye(4, dtype=np.float32), np.ones(4), 2)
        >>> normalizers(v, v, 16, np.random.default_rng(0)).shape
        (2, 4)
    """
    longest, m, _ = other.shape
    picks = []
    for k in range(longest):
        valid = m - k
        if valid > 0:
            picks.append(other[k, rng.integers(0, valid, size=max(samples // longest, 1))])
    sample = np.concatenate(picks)
    return (1.0 - own @ sample.T).mean(axis=2).astype(np.float32)


def anchors(src: np.ndarray, tgt: np.ndarray, k: int = 4) -> np.ndarray:
    """``(p, 2)`` sentence pairs ``(i, j)`` increasing on both sides: the heaviest chain among each source
    sentence's ``k`` nearest target sentences, each pair weighted by how far its cosine stands above the two
    sentences' neighbourhoods (pairs that do not stand out are left out).

    Example:
        >>> e = np.eye(3, dtype=np.float32)
        >>> anchors(e, e[[0, 2, 1]], k=2).tolist()
        [[0, 0], [1, 2]]
    """
    import faiss

    n, m = len(src), len(tgt)
    if not n or not m:
        return np.zeros((0, 2), dtype=np.int64)
    k = min(k, m, n)
    index = faiss.IndexFlatIP(src.shape[1])
    index.add(np.ascontiguousarray(tgt, dtype=np.float32))
    scores, found = index.search(np.ascontiguousarray(src, dtype=np.float32), k)
    back = faiss.IndexFlatIP(src.shape[1])
    back.add(np.ascontiguousarray(src, dtype=np.float32))
    back_scores, _ = back.search(np.ascontiguousarray(tgt, dtype=np.float32), k)
    src_hub, tgt_hub = scores.mean(axis=1), back_scores.mean(axis=1)
    weight = scores - (src_hub[:, None] + tgt_hub[found]) / 2
    rows = np.repeat(np.arange(n), k)
    cols, weight = found.ravel(), weight.ravel()
    keep = (weight > 0) & (cols >= 0)
    rows, cols, weight = rows[keep], cols[keep], weight[keep]
    order = np.lexsort((-cols, rows))  # by source; within a source, later targets first (no chain inside a row)
    rows, cols, weight = rows[order], cols[order], weight[order]
    # heaviest chain strictly increasing in both: a Fenwick tree of (best weight, pair) over target positions
    tree_w = np.zeros(m + 1)
    tree_p = np.full(m + 1, -1, dtype=np.int64)
    best = np.zeros(len(rows))
    prev = np.full(len(rows), -1, dtype=np.int64)
    for p in range(len(rows)):
        j = int(cols[p])
        w, q, x = 0.0, -1, j  # prefix max over targets < j
        while x > 0:
            if tree_w[x] > w:
                w, q = tree_w[x], tree_p[x]
            x -= x & -x
        best[p], prev[p] = w + weight[p], q
        x = j + 1
        while x <= m:
            if best[p] > tree_w[x]:
                tree_w[x], tree_p[x] = best[p], p
            x += x & -x
    if not len(rows):
        return np.zeros((0, 2), dtype=np.int64)
    chain, p = [], int(np.argmax(best))
    while p >= 0:
        chain.append((int(rows[p]), int(cols[p])))
        p = int(prev[p])
    return np.array(chain[::-1], dtype=np.int64)


def band(points: np.ndarray, n: int, m: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Target columns ``[lo[i], hi[i]]`` the search visits on row ``i`` (``0 .. n``): ``width`` each side of the
    line through ``points``, widened to the neighbouring rows' lines so a jump between anchors stays reachable.

    Example:
        >>> lo, hi = band(np.array([[0, 0], [1, 8]]), 2, 9, 1)
        >>> lo.tolist(), hi.tolist()
        ([0, 0, 3], [6, 9, 9])
    """
    xs = np.concatenate([[0], points[:, 0] + 0.5, [n]]) if len(points) else np.array([0, n])
    ys = np.concatenate([[0], points[:, 1] + 0.5, [m]]) if len(points) else np.array([0, m])
    centre = np.interp(np.arange(n + 1), xs, ys)
    before = np.concatenate([[centre[0]], centre[:-1]])
    after = np.concatenate([centre[1:], [centre[-1]]])
    lo = np.floor(np.minimum(np.minimum(before, centre), after)) - width
    hi = np.ceil(np.maximum(np.maximum(before, centre), after)) + width
    lo = np.clip(lo, 0, m).astype(np.int64)
    hi = np.clip(hi, 0, m).astype(np.int64)
    lo[0], hi[-1] = 0, m
    return lo, hi


def search(
    src: np.ndarray,
    tgt: np.ndarray,
    src_norm: np.ndarray,
    tgt_norm: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    types: list[tuple[int, int]],
    skip: float,
    lengths: tuple[np.ndarray, np.ndarray] | None = None,
    length_weight: float = 0.0,
) -> list[Bead]:
    """The cheapest bead sequence covering both documents, every node ``(i, j)`` inside the band.

    ``lengths``: the ``(longest, n)`` character lengths of each side's runs; a bead then also costs
    ``length_weight`` times the squared log ratio of its lengths, against the documents' own ratio."""
    if lengths is not None:
        src_len, tgt_len = np.log(lengths[0] + 1.0), np.log(lengths[1] + 1.0)
        ratio = float(src_len[0].mean() - tgt_len[0].mean()) if len(src_len[0]) and len(tgt_len[0]) else 0.0
    from tqdm.auto import tqdm

    n = len(lo) - 1
    cost: list[np.ndarray] = []
    back: list[np.ndarray] = []  # per node: index into types, or -1 (a source sentence left out), -2 (a target one)
    for i in tqdm(range(n + 1), desc="align", unit="sentence", disable=n < 5000, leave=False):
        cols = np.arange(lo[i], hi[i] + 1)
        best = np.full(len(cols), np.inf)
        arg = np.full(len(cols), -3, dtype=np.int64)
        if i == 0:
            best[cols == 0] = 0.0
        for t, (a, b) in enumerate(types):
            if i - a < 0:
                continue
            prev_cols = cols - b
            prev = _row_values(cost[i - a], lo[i - a], prev_cols)
            ok = np.isfinite(prev)
            if not ok.any():
                continue
            x = src[a - 1, i - a]
            y = tgt[b - 1, prev_cols[ok]]
            sim = y @ x
            c = 2.0 * (1.0 - sim) / (src_norm[a - 1, i - a] + tgt_norm[b - 1, prev_cols[ok]] + 1e-6) * a * b
            if lengths is not None and length_weight:
                c = c + length_weight * (src_len[a - 1, i - a] - tgt_len[b - 1, prev_cols[ok]] - ratio) ** 2
            total = prev[ok] + c
            better = total < best[ok]
            idx = np.flatnonzero(ok)[better]
            best[idx], arg[idx] = total[better], t
        if i > 0:  # source sentence i - 1 left out
            prev = _row_values(cost[i - 1], lo[i - 1], cols) + skip
            better = prev < best
            best[better], arg[better] = prev[better], -1
        # target sentences left out along the row: best[j] = min(best[j], best[j - 1] + skip), as a running minimum
        shifted = best - skip * np.arange(len(cols))
        running = np.minimum.accumulate(shifted)
        chained = running + skip * np.arange(len(cols))
        better = chained < best - 1e-12
        best[better], arg[better] = chained[better], -2
        cost.append(best)
        back.append(arg)
    return _trace(cost, back, lo, types, src, tgt, src_norm, tgt_norm, skip)


def _row_values(row: np.ndarray, start: int, cols: np.ndarray) -> np.ndarray:
    pos = cols - start
    out = np.full(len(cols), np.inf)
    ok = (pos >= 0) & (pos < len(row))
    out[ok] = row[pos[ok]]
    return out


def _trace(cost, back, lo, types, src, tgt, src_norm, tgt_norm, skip) -> list[Bead]:
    i, j = len(cost) - 1, int(lo[-1] + len(cost[-1]) - 1)
    if not np.isfinite(cost[i][j - lo[i]]):
        raise RuntimeError("no alignment path inside the search band: widen it (band=)")
    beads = []
    while i > 0 or j > 0:
        step = int(back[i][j - lo[i]])
        if step == -1:
            beads.append(Bead((i - 1,), (), skip))
            i -= 1
        elif step == -2:
            beads.append(Bead((), (j - 1,), skip))
            j -= 1
        else:
            a, b = types[step]
            c = float(cost[i][j - lo[i]] - cost[i - a][j - b - lo[i - a]])
            beads.append(Bead(tuple(range(i - a, i)), tuple(range(j - b, j)), c))
            i, j = i - a, j - b
    return beads[::-1]


def align(
    src_sentences: Sequence[str],
    tgt_sentences: Sequence[str],
    model: Any = "e5-small",
    max_bead: int = MAX_BEAD,
    skip_quantile: float = SKIP_QUANTILE,
    band_width: int = BAND,
    overlaps: Literal["mean", "encode"] = "mean",
    seed: int = 0,
    vectors: tuple[np.ndarray, np.ndarray] | None = None,
    length_weight: float = LENGTH_WEIGHT,
    weights: Literal["uniform", "tokens"] = WEIGHTS,
) -> list[Bead]:
    """Align two documents that translate each other, one sentence per item, in order.

    Args:
        model: a loaded model or anything :func:`mlembed.models.load_model` accepts.
        max_bead: the largest bead, source plus target sentences (4: up to 1-3, 2-2 and 3-1).
        skip_quantile: leaving a sentence out costs this quantile of the 1-1 costs inside the band.
        band_width: target sentences each side of the anchor line the full search visits.
        length_weight: weight of a bead's squared log ratio of character lengths (against the documents' ratio).
        overlaps: ``mean`` (each sentence encoded once; a run of sentences gets their mean) or ``encode``
            (every run encoded as one text).
        weights: in a ``mean`` run, each sentence weighs the same (``uniform``) or by its ``tokens``.
        vectors: the two documents' overlap vectors, if already computed (:func:`encode_overlaps`).

    Returns:
        Beads in document order covering every sentence of both sides once.
    """
    from mlembed.models import load_model

    n, m = len(src_sentences), len(tgt_sentences)
    if not n or not m:
        return [Bead((i,), (), 0.0) for i in range(n)] + [Bead((), (j,), 0.0) for j in range(m)]
    types = bead_types(max_bead)
    longest = max(max(a, b) for a, b in types)
    if vectors is None:
        model = load_model(model) if isinstance(model, str) else model
        vectors = (
            encode_overlaps(src_sentences, model, longest, overlaps, weights=weights),
            encode_overlaps(tgt_sentences, model, longest, overlaps, weights=weights),
        )
    src, tgt = vectors
    rng = np.random.default_rng(seed)
    src_norm = normalizers(src, tgt, NORM_SAMPLES, rng)
    tgt_norm = normalizers(tgt, src, NORM_SAMPLES, rng)
    points = anchors(src[0], tgt[0])
    lo, hi = band(points, n, m, band_width)
    skip = skip_cost(src[0], tgt[0], src_norm[0], tgt_norm[0], lo, hi, skip_quantile)
    lengths = (run_lengths(src_sentences, longest), run_lengths(tgt_sentences, longest))
    return search(src, tgt, src_norm, tgt_norm, lo, hi, types, skip, lengths, length_weight)


def run_lengths(sentences: Sequence[str], longest: int) -> np.ndarray:
    """``(longest, n)``: characters in sentences ``i .. i + k - 1`` (the run's text joined by spaces).

    Example:
        >>> run_lengths(["ab", "cde"], 2).tolist()
        [[2.0, 3.0], [6.0, 0.0]]
    """
    chars = np.array([len(s) for s in sentences], dtype=np.float64)
    out = np.zeros((longest, len(chars)))
    for k in range(longest):
        if k < len(chars):
            out[k, : len(chars) - k] = np.convolve(chars, np.ones(k + 1), "valid") + k
    return out


def skip_cost(
    src: np.ndarray,
    tgt: np.ndarray,
    src_norm: np.ndarray,
    tgt_norm: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    q: float,
) -> float:
    """The ``q`` quantile of the 1-1 bead costs inside the band: what leaving one sentence out costs."""
    costs = []
    for i in range(len(src)):
        cols = np.arange(lo[i + 1] - 1, hi[i + 1])
        cols = cols[(cols >= 0) & (cols < len(tgt))]
        if len(cols):
            sim = tgt[cols] @ src[i]
            costs.append(2.0 * (1.0 - sim) / (src_norm[i] + tgt_norm[cols] + 1e-6))
    return float(np.quantile(np.concatenate(costs), q)) if costs else 1.0


#: a document pair whose character counts differ more than this factor is not a translation of each other
#: (translations between the languages of Text+Berg, NTREX and Tatoeba stay within 2x)
LENGTH_RATIO_WARNING = 3.0


@dataclass
class AlignmentReport:
    """What one document pair gave: sizes, bead counts by type, and warnings."""

    src: str
    tgt: str
    src_sentences: int
    tgt_sentences: int
    beads: int
    types: dict[str, int]
    warnings: list[str]
    seconds: float


def read_document(path: str | Path) -> list[str]:
    """One sentence a line (blank lines kept as empty sentences, so line numbers stay true); a clear error for an
    empty document or bytes that are not UTF-8 (naming the file and line)."""
    from mlembed.files import DataError, read_lines

    sentences = [text for _, text in read_lines(path)]
    if not any(s.strip() for s in sentences):
        raise DataError("empty document: nothing to align (expected one sentence a line)", path)
    return sentences


def check_pair(src: Sequence[str], tgt: Sequence[str], beads: Sequence[Bead]) -> list[str]:
    """Warnings for a pair that does not look like a document and its translation.

    Example:
        >>> check_pair(["Same."] * 3, ["Same."] * 3, [Bead((i,), (i,), 0.0) for i in range(3)])
        ['3 of 3 aligned 1-1 beads are identical strings: are both sides in the same language?']
    """
    warnings = []
    chars_src, chars_tgt = sum(map(len, src)), sum(map(len, tgt))
    ratio = max(chars_src, chars_tgt) / max(min(chars_src, chars_tgt), 1)
    if ratio > LENGTH_RATIO_WARNING:
        warnings.append(
            f"the documents' lengths differ {ratio:.1f}x ({chars_src:,} vs {chars_tgt:,} characters): a translation "
            f"stays within {LENGTH_RATIO_WARNING:g}x; is one side incomplete, or another document?"
        )
    one_one = [b for b in beads if len(b.src) == 1 and len(b.tgt) == 1]
    same = sum(src[b.src[0]].strip() == tgt[b.tgt[0]].strip() for b in one_one)
    if one_one and same > len(one_one) / 2:
        warnings.append(
            f"{same} of {len(one_one)} aligned 1-1 beads are identical strings: are both sides in the same language?"
        )
    return warnings


def write_alignment(
    beads: Sequence[Bead], src: Sequence[str], tgt: Sequence[str], output: str | Path, tsv: str | Path | None
) -> None:
    """The beads file (``[0]:[0, 1]:cost``, one a line) and optionally a TSV ``source<TAB>target<TAB>cost`` of
    their text (a bead's sentences joined by a space); each written whole or not at all."""
    from mlembed.files import atomic_open

    with atomic_open(output) as fh:
        fh.writelines(b.format() + "\n" for b in beads)
    if tsv is not None:
        with atomic_open(tsv) as fh:
            for b in beads:
                left = " ".join(src[i].replace("\t", " ") for i in b.src)
                right = " ".join(tgt[j].replace("\t", " ") for j in b.tgt)
                fh.write(f"{left}\t{right}\t{b.cost:.6f}\n")


def split_document(lines: Sequence[str], lang: str | None = None) -> tuple[list[str], list[tuple[int, int, int]]]:
    """The sentences of a document given as paragraphs (one a line), and where each comes from: ``(line number,
    start, end)`` in that line. ``lang`` None identifies the document's language from its text.

    Example:
        >>> split_document(["Es regnet. Wir bleiben zu Hause.", "Gut."], "de")
        (['Es regnet.', 'Wir bleiben zu Hause.', 'Gut.'], [(1, 0, 10), (1, 11, 32), (2, 0, 4)])
    """
    from mlembed.sentences import sentence_spans

    if lang is None:
        from mlembed.langid import identify

        lang = identify(" ".join(line for line in lines[:200] if line.strip()))
    sentences, where = [], []
    for number, line in enumerate(lines, start=1):
        for start, end in sentence_spans(line, lang):
            sentences.append(line[start:end])
            where.append((number, start, end))
    return sentences, where


def write_sentences(path: str | Path, sentences: Sequence[str], where: Sequence[tuple[int, int, int]]) -> None:
    """``line<TAB>start<TAB>end<TAB>sentence`` per split sentence: bead indexes point into it, in order."""
    from mlembed.files import atomic_open

    with atomic_open(path) as fh:
        for text, (line, start, end) in zip(sentences, where):
            fh.write(f"{line}\t{start}\t{end}\t{text}\n")


def align_files(
    src_path: str | Path,
    tgt_path: str | Path,
    output: str | Path,
    model: Any = "e5-small",
    tsv: str | Path | None = None,
    split: bool = False,
    langs: tuple[str | None, str | None] = (None, None),
    **options: Any,
) -> AlignmentReport:
    """Align two files (one sentence a line) and write the beads (and optionally the aligned text).

    With ``split``, each line is a paragraph, split into sentences (:func:`split_document`, languages from
    ``langs`` or identified); the beads then index the sentences, written beside them with where each comes
    from (``OUTPUT.src.tsv``, ``OUTPUT.tgt.tsv``). ``options`` are :func:`align`'s. Warnings (lengths that no
    translation has, identical sides) are logged and returned in the report."""
    import time

    from mlembed.models import load_model

    t0 = time.perf_counter()
    src, tgt = read_document(src_path), read_document(tgt_path)
    if split:
        (src, src_where), (tgt, tgt_where) = split_document(src, langs[0]), split_document(tgt, langs[1])
        write_sentences(f"{output}.src.tsv", src, src_where)
        write_sentences(f"{output}.tgt.tsv", tgt, tgt_where)
    model = load_model(model) if isinstance(model, str) else model
    beads = align(src, tgt, model, **options)
    warnings = check_pair(src, tgt, beads)
    for warning in warnings:
        logger.warning(f"{src_path} / {tgt_path}: {warning}")
    write_alignment(beads, src, tgt, output, tsv)
    types: dict[str, int] = {}
    for b in beads:
        key = f"{len(b.src)}-{len(b.tgt)}"
        types[key] = types.get(key, 0) + 1
    return AlignmentReport(
        str(src_path), str(tgt_path), len(src), len(tgt), len(beads), types, warnings, time.perf_counter() - t0
    )


def document_pairs(src: str | Path, tgt: str | Path | None = None) -> list[tuple[Path, Path, str]]:
    """``(source, target, name)`` of each document pair: two files; two directories matched by file name; or (with
    ``tgt`` None) a TSV of ``source<TAB>target`` paths, relative to the TSV's folder.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for side in ("de", "fr"):
        ...     (d / side).mkdir(); _ = (d / side / "a.txt").write_text("x\\n")
        >>> [name for _, _, name in document_pairs(d / "de", d / "fr")]
        ['a.txt']
    """
    from mlembed.files import DataError

    src = Path(src)
    if tgt is None:
        pairs = []
        for number, line in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"expected source<TAB>target paths, got {len(parts)} field(s)", src, number)
            a, b = (src.parent / p.strip() for p in parts)
            for path in (a, b):
                if not path.is_file():
                    raise DataError(f"no such file: {path}", src, number)
            pairs.append((a, b, a.name if a.stem != b.stem else a.stem + ".txt"))
        names = [n for _, _, n in pairs]
        if len(set(names)) != len(names):
            pairs = [(a, b, f"{i:05d}-{n}") for i, (a, b, n) in enumerate(pairs)]
        return pairs
    tgt = Path(tgt)
    if src.is_dir() != tgt.is_dir():
        raise DataError("give two files or two directories", src)
    if not src.is_dir():
        return [(src, tgt, src.name)]
    names = sorted(p.name for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    missing = [n for n in names if not (tgt / n).is_file()]
    if missing:
        raise DataError(f"{len(missing)} file(s) have no counterpart in {tgt}, e.g. {missing[0]}", src)
    if not names:
        raise DataError("no files to align", src)
    return [(src / n, tgt / n, n) for n in names]
