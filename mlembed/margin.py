"""Margin scoring of k-NN candidates and the F1 of a cut (Artetxe & Schwenk 2019; LASER's ``mine_bitexts.py``).

For a source ``x`` and a target ``y`` among each other's ``k`` nearest neighbours::

    score(x, y) = margin(cos(x, y), (mean_k cos(x, NN_k(x)) + mean_k cos(y, NN_k(y))) / 2)

with ``margin(a, b) = a / b`` (``ratio``), ``a - b`` (``distance``) or ``a`` (``absolute``).
Modes: ``forward`` keeps each source's best-scoring candidate, ``backward`` each target's,
``intersect`` the pairs both directions agree on, ``max`` the union where, best score first, each
sentence is used once. :func:`f1_sweep` gives every threshold's precision, recall and F1 against gold pairs.
:mod:`mlembed.mine` mines files and embeddings with them; :mod:`mlembed.backends.probe` judges an engine by them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlembed.knn import Neighbours

MARGINS = ("ratio", "distance", "absolute")
MODES = ("forward", "backward", "intersect", "max")
#: the threshold ``mlembed mine`` keeps pairs at when none is given or calibrated, per margin
DEFAULT_THRESHOLDS = {"ratio": 1.06, "distance": 0.04, "absolute": 0.7}


@dataclass
class MinedPairs:
    """Mined pairs, best first: ``scores`` (float32, descending), ``src_idx`` and ``tgt_idx`` (int64 rows)."""

    scores: np.ndarray
    src_idx: np.ndarray
    tgt_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> MinedPairs:
        """The pairs scoring at least ``threshold``."""
        keep = self.scores >= threshold
        return MinedPairs(self.scores[keep], self.src_idx[keep], self.tgt_idx[keep])


def _margin(a: np.ndarray, b: np.ndarray, margin: str) -> np.ndarray:
    if margin == "ratio":
        return a / b
    if margin == "distance":
        return a - b
    return a


def neighbourhood_means(nn: Neighbours) -> np.ndarray:
    """Each row's mean similarity to its neighbours (the margin's denominator; ``mlembed filter`` scores given
    pairs with it).

    Example:
        >>> neighbourhood_means(Neighbours(np.array([[0.9, 0.5]], "float32"), np.array([[1, -1]]))).tolist()
        [0.8999999761581421]
    """
    valid = nn.ids >= 0
    total = np.where(valid, nn.sims, np.float32(0)).sum(axis=1, dtype=np.float32)
    return (total / np.maximum(valid.sum(axis=1), 1)).astype(np.float32)


def candidate_scores(nn: Neighbours, own_mean: np.ndarray, other_mean: np.ndarray, margin: str) -> np.ndarray:
    """Margin score of each of the ``k`` candidates of each row (``-inf`` where there is no candidate).

    Example:
        >>> nn = Neighbours(np.array([[0.9, 0.5]], "float32"), np.array([[1, 0]]))
        >>> candidate_scores(nn, np.array([0.7]), np.array([0.5, 0.7]), "ratio").round(3).tolist()
        [[1.286, 0.833]]
    """
    valid = nn.ids >= 0
    other = other_mean[np.where(valid, nn.ids, 0)]
    # float32 throughout, as LASER computes it: near-ties then break the same way (towards the nearer neighbour)
    scores = _margin(nn.sims.astype(np.float32), (own_mean[:, None] + other) / np.float32(2), margin)
    return np.where(valid, scores, -np.inf)


def select_pairs(
    fwd: Neighbours,
    bwd: Neighbours,
    margin: str = "ratio",
    mode: str = "intersect",
    means: tuple[np.ndarray, np.ndarray] | None = None,
) -> MinedPairs:
    """Score candidates from both k-NN lists and pick pairs by ``mode`` (LASER ``mine_bitexts`` semantics).
    ``means``: each source's and each target's neighbourhood mean, where not those of ``fwd`` and ``bwd``
    (:func:`mlembed.means.calibrated_means`).

    Example:
        >>> from mlembed.knn import MiningOptions, knn_both_ways
        >>> x = np.eye(3, dtype="float32")
        >>> fwd, bwd = knn_both_ways(x, x[[1, 2, 0]], MiningOptions(k=2))
        >>> p = select_pairs(fwd, bwd); p.src_idx.tolist(), p.tgt_idx.tolist()
        ([0, 1, 2], [2, 0, 1])
    """
    if margin not in MARGINS:
        raise ValueError(f"margin must be one of {MARGINS}, got {margin!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    fwd_mean, bwd_mean = means if means is not None else (neighbourhood_means(fwd), neighbourhood_means(bwd))
    fwd_scores = candidate_scores(fwd, fwd_mean, bwd_mean, margin)
    bwd_scores = candidate_scores(bwd, bwd_mean, fwd_mean, margin)
    fwd_arg, bwd_arg = fwd_scores.argmax(axis=1), bwd_scores.argmax(axis=1)
    n_src, n_tgt = len(fwd.ids), len(bwd.ids)
    fwd_best = fwd.ids[np.arange(n_src), fwd_arg]
    bwd_best = bwd.ids[np.arange(n_tgt), bwd_arg]
    fwd_top = fwd_scores[np.arange(n_src), fwd_arg]
    bwd_top = bwd_scores[np.arange(n_tgt), bwd_arg]
    src_all, tgt_all = np.arange(n_src, dtype=np.int64), np.arange(n_tgt, dtype=np.int64)
    if mode == "forward":
        s, i, j = fwd_top, src_all, fwd_best
    elif mode == "backward":
        s, i, j = bwd_top, bwd_best, tgt_all
    elif mode == "intersect":
        ok = fwd_best >= 0
        ok[ok] = bwd_best[fwd_best[ok]] == src_all[ok]
        s, i, j = fwd_top[ok], src_all[ok], fwd_best[ok]
    else:
        s = np.concatenate([fwd_top, bwd_top])
        i = np.concatenate([src_all, bwd_best])
        j = np.concatenate([fwd_best, tgt_all])
        order = np.argsort(-s, kind="stable")
        seen_src = np.zeros(n_src, dtype=bool)
        seen_tgt = np.zeros(n_tgt, dtype=bool)
        keep = []
        for pos, a, b in zip(order.tolist(), i[order].tolist(), j[order].tolist()):
            if a >= 0 and b >= 0 and not seen_src[a] and not seen_tgt[b]:
                seen_src[a] = seen_tgt[b] = True
                keep.append(pos)
        s, i, j = s[keep], i[keep], j[keep]
    ok = (i >= 0) & (j >= 0) & np.isfinite(s)
    s, i, j = s[ok], i[ok], j[ok]
    order = np.lexsort((j, i, -s))
    return MinedPairs(s[order].astype(np.float32), i[order].astype(np.int64), j[order].astype(np.int64))


@dataclass
class ThresholdChoice:
    """The threshold maximising F1 on labelled pairs, with its precision, recall and F1."""

    threshold: float
    precision: float
    recall: float
    f1: float


def f1_sweep(
    scores: np.ndarray, correct: np.ndarray, n_gold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every cut of scored candidates: thresholds (each distinct score, descending) with the precision,
    recall and F1 (fractions) of keeping the candidates scoring ``>=`` it. The one threshold sweep of
    mlembed: ``mine --calibrate`` and the ``mining:``/``bucc:`` evaluation tasks both use it.

    Example:
        >>> t, p, r, f = f1_sweep(np.array([0.9, 0.8, 0.8, 0.6]), np.array([1, 1, 0, 1]), n_gold=4)
        >>> t.tolist(), p.round(3).tolist(), r.tolist()
        ([0.9, 0.8, 0.6], [1.0, 0.667, 0.75], [0.25, 0.5, 0.75])
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    s, c = np.asarray(scores, np.float64)[order], np.asarray(correct, bool)[order].astype(np.int64)
    tp, n_pred = np.cumsum(c), np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # a cut keeps whole groups of equal scores
    tp, n_pred, s = tp[last], n_pred[last], s[last]
    f1 = np.where(tp > 0, 2 * tp / (n_pred + max(n_gold, 1)), 0.0)
    return s, tp / n_pred, tp / max(n_gold, 1), f1


def best_threshold(pairs: MinedPairs, gold: set[tuple[int, int]]) -> ThresholdChoice:
    """The threshold maximising F1 of the mined ``pairs`` against ``gold`` (ties: the highest threshold).

    Example:
        >>> p = MinedPairs(np.array([1.3, 1.2, 1.0], "float32"), np.array([0, 1, 2]), np.array([0, 1, 5]))
        >>> best_threshold(p, {(0, 0), (1, 1), (2, 2)}).threshold
        1.2
    """
    if not gold or not len(pairs):
        return ThresholdChoice(float("inf"), 0.0, 0.0, 0.0)
    correct = np.array([(int(i), int(j)) in gold for i, j in zip(pairs.src_idx, pairs.tgt_idx)])
    thresholds, precision, recall, f1 = f1_sweep(pairs.scores, correct, len(gold))
    best = int(np.argmax(f1))
    return ThresholdChoice(
        round(float(thresholds[best]), 6), float(precision[best]), float(recall[best]), float(f1[best])
    )
