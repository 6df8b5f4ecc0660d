"""Bitext mining with margin scoring (Artetxe & Schwenk 2019; LASER's ``mine_bitexts.py``).

For a source ``x`` and a target ``y`` among each other's ``k`` nearest neighbours::

    score(x, y) = margin(cos(x, y), (mean_k cos(x, NN_k(x)) + mean_k cos(y, NN_k(y))) / 2)

with ``margin(a, b) = a / b`` (``ratio``), ``a - b`` (``distance``) or ``a`` (``absolute``).
Modes: ``forward`` keeps each source's best-scoring candidate, ``backward`` each target's,
``intersect`` the pairs both directions agree on, ``max`` the union where, best score first, each
sentence is used once. The k-NN runs shard by shard from memmaps in bounded memory
(:mod:`mlembed.knn`); :func:`mine_files` adds text handling: dedupe, streamed encoding, atomic TSV.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.io import DataError, atomic_open
from mlembed.knn import Embeddings, Neighbours, knn_both_ways, open_embeddings, read_rows

MARGINS = ("ratio", "distance", "absolute")
MODES = ("forward", "backward", "intersect", "max")
DEFAULT_THRESHOLDS = {"ratio": 1.06, "distance": 0.04, "absolute": 0.7}


@dataclass
class MinedPairs:
    """Mined pairs, best first: ``scores`` (float32, descending), ``src_idx`` and ``tgt_idx`` (int64 rows)."""

    scores: np.ndarray
    src_idx: np.ndarray
    tgt_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> "MinedPairs":
        """The pairs scoring at least ``threshold``."""
        keep = self.scores >= threshold
        return MinedPairs(self.scores[keep], self.src_idx[keep], self.tgt_idx[keep])


def _margin(a: np.ndarray, b: np.ndarray, margin: str) -> np.ndarray:
    if margin == "ratio":
        return a / b
    if margin == "distance":
        return a - b
    return a


def _mean_sims(nn: Neighbours) -> np.ndarray:
    valid = nn.ids >= 0
    return np.where(valid, nn.sims, 0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def candidate_scores(nn: Neighbours, own_mean: np.ndarray, other_mean: np.ndarray, margin: str) -> np.ndarray:
    """Margin score of each of the ``k`` candidates of each row (``-inf`` where there is no candidate).

    Example:
        >>> nn = Neighbours(np.array([[0.9, 0.5]], "float32"), np.array([[1, 0]]))
        >>> candidate_scores(nn, np.array([0.7]), np.array([0.5, 0.7]), "ratio").round(3).tolist()
        [[1.286, 0.833]]
    """
    valid = nn.ids >= 0
    other = other_mean[np.where(valid, nn.ids, 0)]
    scores = _margin(nn.sims.astype(np.float64), (own_mean[:, None] + other) / 2, margin)
    return np.where(valid, scores, -np.inf)


def select_pairs(fwd: Neighbours, bwd: Neighbours, margin: str = "ratio", mode: str = "intersect") -> MinedPairs:
    """Score candidates from both k-NN lists and pick pairs by ``mode`` (LASER ``mine_bitexts`` semantics).

    Example:
        >>> x = np.eye(3, dtype="float32")
        >>> fwd, bwd = knn_both_ways(x, x[[1, 2, 0]], k=2)
        >>> p = select_pairs(fwd, bwd); p.src_idx.tolist(), p.tgt_idx.tolist()
        ([0, 1, 2], [2, 0, 1])
    """
    if margin not in MARGINS:
        raise ValueError(f"margin must be one of {MARGINS}, got {margin!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    fwd_mean, bwd_mean = _mean_sims(fwd), _mean_sims(bwd)
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


def mine_embeddings(
    src: Embeddings,
    tgt: Embeddings,
    k: int = 4,
    margin: str = "ratio",
    mode: str = "intersect",
    threshold: float | None = None,
    memory_budget: int | str | None = None,
    index: str = "flat",
    show_progress: bool = False,
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    shard_size: int | None = None,
    nprobe: int | None = None,
    train_size: int | None = None,
) -> MinedPairs:
    """Mine parallel pairs between two sets of L2-normalised embeddings.

    Args:
        src, tgt: ``(n, d)`` float32 arrays, memmaps or ``.npy`` paths, L2-normalised.
        k: neighbourhood size of the margin.
        margin: ``ratio`` | ``distance`` | ``absolute``.
        mode: ``forward`` | ``backward`` | ``intersect`` | ``max``.
        threshold: keep pairs scoring ``>= threshold``; ``None`` returns every candidate.
        memory_budget: working-set size for the k-NN (``"1G"``, bytes; default 2 GiB).
        index: ``flat`` (exact) or an approximate FAISS index (``ivf``, ``ivfsq``, ``hnsw``, factory string).
        workdir, resume: per-shard checkpoints, and continuing a killed run from them.
        shard_size, nprobe, train_size: see :func:`mlembed.knn.knn_both_ways`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(50, 16)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> y = x[::-1] + 0.01; y /= np.linalg.norm(y, axis=1, keepdims=True)
        >>> pairs = mine_embeddings(x, y)
        >>> bool(np.all(pairs.tgt_idx == 49 - pairs.src_idx)), len(pairs)
        (True, 50)
    """
    fwd, bwd = knn_both_ways(
        src, tgt, k=k, memory_budget=memory_budget, index=index, workdir=workdir, resume=resume,
        shard_size=shard_size, nprobe=nprobe, train_size=train_size, show_progress=show_progress,
    )
    pairs = select_pairs(fwd, bwd, margin, mode)
    return pairs if threshold is None else pairs.above(threshold)
