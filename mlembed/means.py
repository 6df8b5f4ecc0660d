"""Neighbourhood means of an approximate k-NN, made right where they decide a pair.

The ratio and distance margins divide (or subtract) by the mean similarity of each sentence to its ``k`` nearest
neighbours. An IVF search finds a row's neighbours only in the lists it probes, so a row whose true neighbours sit
in unprobed lists gets a mean that is too low, and every pair it is in scores too high: the approximate search keeps
the exact search's candidates but loses precision (benchmarks/results/mining_e2e.md). First, whatever the option,
the two directions are :func:`pooled`: a row takes the neighbours the other side's search found it from (free; at
200k x 200k and nprobe 16 it lifted the means of 15 % / 7 % of the rows, and F1 with found means from 54.6 to
58.8). Then two remedies, chosen by :attr:`mlembed.knn.MiningOptions.means`:

* ``exact`` (:func:`exact_where_needed`): the found neighbours are exact cosines of some of the other side's rows, so
  their mean is a lower bound of the true one (a row with fewer than ``k`` found has none, and is made exact) and
  each margin an upper bound of the exact-means margin. A pair
  whose bound is below the cut can therefore never reach it; the rows of the pairs that can get their exact
  neighbours (:func:`mlembed.knn.exact_neighbours`: their cost is their share of the exact search's), the scores
  are recomputed, and rows of pairs newly above the cut are added, until none is left. Every pair scoring at or
  above the cut then scores exactly what the same candidates score with exact means, and every pair below it
  stays below it (its score an upper bound).
* ``calibrated`` (:func:`calibrated_means`): the exact neighbourhoods of a random sample of rows of each side fit a
  line from found mean to exact mean, applied to every row of that side (never lowering a mean). Cheap, but
  a correction on average: a row's own error remains.
* ``found``: the pooled neighbours' means, as an exact search has them (an exact search's means are exact: it is
  left as it is whatever the option says; the ``absolute`` margin, which has no means, takes the pooled candidates).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlembed.arrays import Embeddings, open_embeddings
from mlembed.files import atomic_path
from mlembed.knn import MEANS, MiningOptions, Neighbours, exact_neighbours
from mlembed.margin import DEFAULT_THRESHOLDS, candidate_scores, neighbourhood_means

logger = logging.getLogger(__name__)

__all__ = ["MEANS", "MeansReport", "calibrated_means", "estimate_means", "exact_where_needed", "means_cut", "pooled"]


@dataclass
class MeansReport:
    """What an estimate of the neighbourhood means did: rows given exact neighbourhoods (``exact``: per round, one
    side a round, as ``(source rows, target rows)``), the cut, the fitted lines (``calibrated``: ``(slope, intercept)`` per side) and the seconds."""

    method: str
    cut: float | None = None
    rows: list[tuple[int, int]] = field(default_factory=list)
    lines: list[tuple[float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the log."""
        if self.method == "exact":
            src, tgt = (sum(r[i] for r in self.rows) for i in (0, 1))
            return (
                f"exact neighbourhood means for {src:,} source and {tgt:,} target rows (the pairs whose score can "
                f"reach {self.cut:g}; {len(self.rows)} rounds, {self.seconds:.1f} s): pairs scoring {self.cut:g} or "
                f"more score as with exact means, scores below it are upper bounds (--means-cut)"
            )
        if self.method == "calibrated":
            lines = ", ".join(f"{a:.3f} x + {b:.3f}" for a, b in self.lines)
            return f"neighbourhood means calibrated on exact samples (source, target: {lines}; {self.seconds:.1f} s)"
        return "neighbourhood means of the neighbours found (both directions pooled)"


def exact_where_needed(
    src: Embeddings,
    tgt: Embeddings,
    fwd: Neighbours,
    bwd: Neighbours,
    margin: str,
    cut: float,
    memory_budget: int | str | None = None,
    show_progress: bool = False,
    workdir: str | os.PathLike | None = None,
) -> tuple[Neighbours, Neighbours, MeansReport]:
    """``fwd`` and ``bwd`` (an approximate search's neighbours both ways) with the rows of every candidate pair whose
    ``margin`` score can reach ``cut`` replaced by their exact neighbours, so those pairs score as with exact means
    (see the module's docstring for why the others cannot reach it). With ``workdir`` each round's exact rows are
    saved there (``means-NNN.npz``, atomically) and a resumed run replays the rounds it finds for the same rows, cut
    and margin instead of computing them again.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(300, 8)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> from mlembed.knn import MiningOptions, knn_both_ways
        >>> exact = knn_both_ways(x, x[::-1], MiningOptions(k=4))
        >>> missed = lambda a, fill: np.c_[a[:, 1:], np.full(len(a), fill)].astype(a.dtype)  # the best neighbour missed
        >>> poor = [Neighbours(missed(nn.sims, -np.inf), missed(nn.ids, -1)) for nn in exact]
        >>> fwd, bwd, report = exact_where_needed(x, x[::-1], *poor, "ratio", cut=1.0)
        >>> from mlembed.margin import select_pairs
        >>> scored = lambda p: dict(zip(zip(p.src_idx.tolist(), p.tgt_idx.tolist()), p.scores.tolist()))
        >>> found, right = scored(select_pairs(fwd, bwd).above(1.0)), scored(select_pairs(*exact))
        >>> len(found), all(right.get(pair) == score for pair, score in found.items()), report.rows
        (300, True, [(300, 0), (0, 300)])
    """
    if margin not in ("ratio", "distance"):
        raise ValueError(f"exact neighbourhood means apply to the ratio and distance margins, not {margin!r}")
    clock = time.monotonic()
    src, tgt = open_embeddings(src), open_embeddings(tgt)
    fwd = Neighbours(fwd.sims.copy(), fwd.ids.copy())
    bwd = Neighbours(bwd.sims.copy(), bwd.ids.copy())
    exact_src = np.zeros(len(fwd.ids), dtype=bool)
    exact_tgt = np.zeros(len(bwd.ids), dtype=bool)
    report = MeansReport("exact", cut=float(cut))
    while True:
        fwd_mean, bwd_mean = neighbourhood_means(fwd), neighbourhood_means(bwd)
        rf, cf = np.nonzero(candidate_scores(fwd, fwd_mean, bwd_mean, margin) >= cut)
        rb, cb = np.nonzero(candidate_scores(bwd, bwd_mean, fwd_mean, margin) >= cut)
        # a row with fewer than k neighbours found has no lower bound of its mean (that of those it has can
        # exceed the exact one): it is made exact whatever its pairs score
        short_src, short_tgt = np.nonzero((fwd.ids < 0).any(axis=1))[0], np.nonzero((bwd.ids < 0).any(axis=1))[0]
        want_src = np.unique(np.concatenate([rf, bwd.ids[rb, cb], short_src]))
        want_tgt = np.unique(np.concatenate([fwd.ids[rf, cf], rb, short_tgt]))
        want_src, want_tgt = want_src[~exact_src[want_src]], want_tgt[~exact_tgt[want_tgt]]
        if not len(want_src) and not len(want_tgt):
            break
        # one side a round, the one with more rows to do: its exact means lower the other side's bounds, and
        # pairs that fall below the cut then need nothing on the other side
        side = "source" if len(want_src) >= len(want_tgt) else "target"
        nn, rows, queries, db, done = {
            "source": (fwd, want_src, src, tgt, exact_src),
            "target": (bwd, want_tgt, tgt, src, exact_tgt),
        }[side]
        round_no = len(report.rows) + 1
        kept = Path(workdir) / f"means-{round_no:03d}.npz" if workdir is not None else None
        found = _saved_round(kept, side, rows, cut, margin)
        if found is None:
            desc = f"exact means ({side}, round {round_no})"
            found = exact_neighbours(queries, rows, db, nn.ids.shape[1], memory_budget, show_progress, desc)
            if kept is not None:
                with atomic_path(kept, suffix=".npz") as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, side=side, rows=rows, cut=cut, margin=margin, sims=found.sims, ids=found.ids)
        nn.sims[rows], nn.ids[rows] = found.sims, found.ids
        done[rows] = True
        report.rows.append((len(rows), 0) if side == "source" else (0, len(rows)))
    report.seconds = round(time.monotonic() - clock, 2)
    logger.info(report.summary())
    return fwd, bwd, report


def pooled(fwd: Neighbours, bwd: Neighbours) -> tuple[Neighbours, Neighbours]:
    """Each row's ``k`` best neighbours among those its own search found and the rows of the other side whose search
    found it: a similarity is symmetric, and :func:`mlembed.knn.canonical` makes it the same number both ways, so an
    approximate search's two directions complete each other at no cost in products. Each row's mean can only rise
    towards the exact one (it stays a lower bound of it), and each row keeps the canonical order (similarity
    descending, id ascending).

    Example:
        >>> fwd = Neighbours(np.array([[0.5], [0.2]], "float32"), np.array([[1], [1]]))  # source 1 missed target 0
        >>> bwd = Neighbours(np.array([[0.9], [0.5]], "float32"), np.array([[1], [0]]))  # target 0 found source 1
        >>> f, b = pooled(fwd, bwd); f.ids.tolist(), f.sims.tolist(), b.ids.tolist()
        ([[1], [0]], [[0.5], [0.8999999761581421]], [[1], [0]])
    """
    return _pool(fwd, bwd), _pool(bwd, fwd)


def _pool(own: Neighbours, other: Neighbours) -> Neighbours:
    """``own``'s rows with the entries of ``other`` that name them added, the best ``k`` kept (see :func:`pooled`)."""
    n, k = own.ids.shape
    rows = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), k), other.ids.ravel()])
    ids = np.concatenate([own.ids.ravel(), np.repeat(np.arange(len(other.ids), dtype=np.int64), other.ids.shape[1])])
    sims = np.concatenate([own.sims.ravel(), other.sims.ravel()])
    keep = (rows >= 0) & (ids >= 0)
    rows, ids, sims = rows[keep], ids[keep], sims[keep]
    bits = sims.astype(np.float32).view(np.uint32).astype(np.int64)  # float order as integers, descending:
    descending = np.where(bits >= 1 << 31, bits, (1 << 31) - 1 - bits)  # (negative floats have the sign bit)
    order = np.argsort(ids, kind="stable")
    order = order[np.argsort((rows[order] << 32) | descending[order], kind="stable")]  # row, similarity, id
    rows, ids, sims = rows[order], ids[order], sims[order]
    width = int(max(ids.max(initial=0), 0)) + 1  # a pair found both ways is kept once, at its best place
    _, first = np.unique(rows * width + ids, return_index=True)
    first.sort()
    rows, ids, sims = rows[first], ids[first], sims[first]
    starts = np.searchsorted(rows, np.arange(n))
    rank = np.arange(len(rows)) - starts[rows]
    top = rank < k
    out_sims = np.full((n, k), -np.inf, dtype=own.sims.dtype)
    out_ids = np.full((n, k), -1, dtype=own.ids.dtype)
    out_sims[rows[top], rank[top]], out_ids[rows[top], rank[top]] = sims[top], ids[top]
    return Neighbours(out_sims, out_ids)


def _saved_round(path: Path | None, side: str, rows: np.ndarray, cut: float, margin: str) -> Neighbours | None:
    """The exact neighbours a killed run saved for this round, if it saved them for the same rows, cut and margin."""
    if path is None or not path.exists():
        return None
    with np.load(path) as saved:
        same = str(saved["side"]) == side and float(saved["cut"]) == cut and str(saved["margin"]) == margin
        if not same or not np.array_equal(saved["rows"], rows):
            return None
        return Neighbours(saved["sims"], saved["ids"])


def calibrated_means(
    src: Embeddings,
    tgt: Embeddings,
    fwd: Neighbours,
    bwd: Neighbours,
    sample: int = 2000,
    seed: int = 0,
    memory_budget: int | str | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, MeansReport]:
    """Each side's neighbourhood means, corrected by a line fitted from found to exact means on ``sample`` random
    rows of that side (a corrected mean is never below the found one, which is a lower bound).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(400, 8)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> from mlembed.knn import MiningOptions, knn_both_ways
        >>> exact = knn_both_ways(x, x[::-1], MiningOptions(k=4))
        >>> missed = lambda a, fill: np.c_[a[:, 1:], np.full(len(a), fill)].astype(a.dtype)  # the best neighbour missed
        >>> poor = [Neighbours(missed(nn.sims, -np.inf), missed(nn.ids, -1)) for nn in exact]
        >>> fm, bm, _ = calibrated_means(x, x[::-1], *poor, sample=100)
        >>> bool(np.abs(fm - neighbourhood_means(exact[0])).mean() < np.abs(neighbourhood_means(poor[0]) - neighbourhood_means(exact[0])).mean())
        True
    """
    clock = time.monotonic()
    src, tgt = open_embeddings(src), open_embeddings(tgt)
    rng = np.random.default_rng(seed)
    report = MeansReport("calibrated")
    out = []
    for nn, queries, db, side in ((fwd, src, tgt, "source"), (bwd, tgt, src, "target")):
        found = neighbourhood_means(nn)
        rows = np.sort(rng.choice(len(found), size=min(sample, len(found)), replace=False))
        exact = neighbourhood_means(
            exact_neighbours(queries, rows, db, nn.ids.shape[1], memory_budget, show_progress, f"calibration ({side})")
        )
        slope, intercept = np.polyfit(found[rows].astype(np.float64), exact.astype(np.float64), 1)
        report.lines.append((float(slope), float(intercept)))
        out.append(np.maximum(found, (slope * found + intercept).astype(np.float32)))
    report.seconds = round(time.monotonic() - clock, 2)
    logger.info(report.summary())
    return out[0], out[1], report


def means_cut(options: MiningOptions) -> float:
    """The score from which ``means="exact"`` makes pairs exact: ``options.means_cut``, else the threshold raised to
    the margin's default (:data:`mlembed.margin.DEFAULT_THRESHOLDS`) where it is unset or lower.

    Example:
        >>> means_cut(MiningOptions(threshold=0)), means_cut(MiningOptions(threshold=1.2)), means_cut(MiningOptions(means_cut=1.1))
        (1.06, 1.2, 1.1)
    """
    if options.means_cut is not None:
        return float(options.means_cut)
    default = DEFAULT_THRESHOLDS[options.margin]
    return default if options.threshold is None else max(float(options.threshold), default)


def estimate_means(
    src: Embeddings,
    tgt: Embeddings,
    fwd: Neighbours,
    bwd: Neighbours,
    options: MiningOptions,
    show_progress: bool = False,
) -> tuple[Neighbours, Neighbours, tuple[np.ndarray, np.ndarray] | None, MeansReport]:
    """What :func:`mlembed.mine.mine_embeddings` scores pairs with after the k-NN: the neighbours (an approximate
    search's two directions :func:`pooled`, then rows made exact by ``means="exact"``) and the means where not theirs
    (``calibrated``), per ``options.means``. An exact search leaves the neighbours as they are.

    Example:
        >>> x = np.eye(3, dtype="float32"); nn = Neighbours(np.ones((3, 1), "float32"), np.arange(3)[:, None])
        >>> estimate_means(x, x, nn, nn, MiningOptions(means="exact"))[3].method  # flat: exact already
        'found'
    """
    if options.index == "flat":
        return fwd, bwd, None, MeansReport("found")
    fwd, bwd = pooled(fwd, bwd)
    if options.margin == "absolute" or options.means == "found":
        return fwd, bwd, None, MeansReport("found")
    if options.means == "exact":
        cut = means_cut(options)
        fwd, bwd, report = exact_where_needed(
            src, tgt, fwd, bwd, options.margin, cut, options.memory_budget, show_progress, options.workdir
        )
        return fwd, bwd, None, report
    if options.means == "calibrated":
        fwd_mean, bwd_mean, report = calibrated_means(
            src, tgt, fwd, bwd, memory_budget=options.memory_budget, show_progress=show_progress
        )
        return fwd, bwd, (fwd_mean, bwd_mean), report
    raise ValueError(f"means {options.means!r}: expected one of {', '.join(MEANS)}")
