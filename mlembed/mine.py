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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.arrays import Embeddings, open_embeddings, parse_size, read_rows
from mlembed.data.output import tsv_field
from mlembed.files import DataError, atomic_open, file_sha256
from mlembed.knn import Neighbours, knn_both_ways

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


def _mean_sims(nn: Neighbours) -> np.ndarray:
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
    ray: bool | str = False,
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
        ray: run the query shards as tasks on a Ray cluster (``True``: ``$RAY_ADDRESS`` or a local one; a
            string: that address); ``src`` and ``tgt`` are then ``.npy`` paths and ``workdir`` is needed
            (:func:`mlembed.cluster.knn.knn_both_ways_ray`). Same pairs as without.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(50, 16)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> y = x[::-1] + 0.01; y /= np.linalg.norm(y, axis=1, keepdims=True)
        >>> pairs = mine_embeddings(x, y)
        >>> bool(np.all(pairs.tgt_idx == 49 - pairs.src_idx)), len(pairs)
        (True, 50)
    """
    settings = dict(
        k=k,
        memory_budget=memory_budget,
        index=index,
        resume=resume,
        shard_size=shard_size,
        nprobe=nprobe,
        train_size=train_size,
        show_progress=show_progress,
    )
    if ray:
        from mlembed.cluster.knn import knn_both_ways_ray

        if workdir is None or not isinstance(src, (str, os.PathLike)) or not isinstance(tgt, (str, os.PathLike)):
            raise ValueError("mining on Ray needs src and tgt as .npy paths and a workdir that its workers can read")
        fwd, bwd = knn_both_ways_ray(src, tgt, workdir, address=ray if isinstance(ray, str) else None, **settings)
    else:
        fwd, bwd = knn_both_ways(src, tgt, workdir=workdir, **settings)
    pairs = select_pairs(fwd, bwd, margin, mode)
    return pairs if threshold is None else pairs.above(threshold)


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


def calibrate_threshold(
    src: np.ndarray, tgt: np.ndarray, k: int = 4, margin: str = "ratio", mode: str = "intersect", seed: int = 0
) -> ThresholdChoice:
    """Threshold from a parallel calibration set (row ``i`` of ``src`` translates row ``i`` of ``tgt``).

    Half of the targets (chosen with ``seed``) are withheld, so half of the sources have no true
    partner and the threshold must reject their best candidates; the F1-best cut is returned.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 32)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> y = x + 0.05 * rng.normal(size=x.shape).astype("float32"); y /= np.linalg.norm(y, axis=1, keepdims=True)
        >>> calibrate_threshold(x, y).f1 > 0.9
        True
    """
    n = len(src)
    kept = np.sort(np.random.default_rng(seed).permutation(n)[: (n + 1) // 2])
    pairs = mine_embeddings(np.asarray(src), np.asarray(tgt)[kept], k=k, margin=margin, mode=mode)
    return best_threshold(pairs, {(int(i), j) for j, i in enumerate(kept)})


def calibrate_from_spec(
    spec: str,
    model: Any,
    k: int = 4,
    margin: str = "ratio",
    mode: str = "intersect",
    langs: list[str] | None = None,
    limit: int = 5000,
) -> ThresholdChoice:
    """:func:`calibrate_threshold` on up to ``limit`` pairs read with :func:`mlembed.data.read_pairs` (e.g. ``ntrex:DIR:deu``)."""
    from itertools import islice

    from mlembed.data import read_pairs
    from mlembed.encoding import encode

    pairs = list(islice(read_pairs(spec, langs=langs), limit))
    if len(pairs) < 10:
        raise DataError(f"calibration needs at least 10 parallel pairs, got {len(pairs)}", spec)
    src = encode([p.src for p in pairs], model, normalize=True)
    tgt = encode([p.tgt for p in pairs], model, normalize=True)
    return calibrate_threshold(src, tgt, k=k, margin=margin, mode=mode)


def _embed_unique(
    text: str | os.PathLike,
    ids: np.ndarray,
    n_lines: int,
    out: Path,
    model: Any,
    emb: str | os.PathLike | None,
    fingerprint: str,
    show_progress: bool,
) -> Path:
    """Embeddings of the deduplicated lines ``ids`` of ``text`` in ``out`` (reused when already complete)."""
    from tqdm.auto import tqdm

    from mlembed.encoding import encode_to_npy
    from mlembed.textstore import LineStore

    stamp = out.with_suffix(".json")  # inputs stamped by content: an edited file at the same path is re-encoded
    want = {
        "fingerprint": fingerprint,
        "rows": int(len(ids)),
        "source_sha256": file_sha256(text),
        "embeddings_sha256": None if emb is None else file_sha256(emb),
    }
    if out.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return out
    if emb is not None:
        given = open_embeddings(emb)
        if len(given) != n_lines:
            raise DataError(f"{len(given)} embedding rows for {n_lines} lines of {text}", emb)
        with atomic_open(out, "wb") as fh:  # gather the unique rows in chunks
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f4", "fortran_order": False, "shape": (len(ids), given.shape[1])}
            )
            for start in tqdm(range(0, len(ids), 65536), desc=f"gather {out.name}", disable=not show_progress):
                part = ids[start : start + 65536]
                fh.write(read_rows(given, int(part[0]), int(part[-1]) + 1)[part - part[0]].tobytes())
    else:
        store = LineStore.build(text, offsets=out.with_suffix(".offsets.npy"))
        lines = (store[int(i)] for i in ids)
        encode_to_npy(lines, out, model, count=len(ids), normalize=True, show_progress=show_progress)
    with atomic_open(stamp) as fh:
        json.dump(want, fh)
    return out


def _encode_unique_on_ray(
    text: str | os.PathLike,
    ids: np.ndarray,
    folder: Path,
    model: Any,
    backend: str,
    ray: bool | str,
    show_progress: bool,
) -> Path:
    """The distinct lines ``ids`` of ``text`` encoded by a Ray actor pool into ``FOLDER.npy`` (one row per id)."""
    from mlembed.cluster.encode import encode_ray, shards_to_npy
    from mlembed.textstore import LineStore

    lines, stamp = folder.with_suffix(".unique.txt"), folder.with_suffix(".unique.json")
    source = {"source_sha256": file_sha256(text), "rows": int(len(ids))}
    if not (lines.exists() and stamp.exists() and json.loads(stamp.read_text()) == source):
        shutil.rmtree(folder, ignore_errors=True)  # shards of an older version of the file
        store = LineStore.build(text, offsets=folder.with_suffix(".offsets.npy"))
        with atomic_open(lines) as fh:
            for i in ids:
                fh.write(store[int(i)] + "\n")
        store.close()
        with atomic_open(stamp) as fh:
            json.dump(source, fh)
    name = getattr(model, "mlembed_source", None) or model
    encode_ray(
        [lines],
        folder,
        str(name),
        backend=backend,
        address=ray if isinstance(ray, str) else None,
        normalize=True,
        show_progress=show_progress,
    )
    return shards_to_npy(folder, folder.with_suffix(".npy"))


def mine_files(
    src: str | os.PathLike,
    tgt: str | os.PathLike,
    output: str | os.PathLike,
    model: Any = "minilm-en",
    k: int = 4,
    margin: str = "ratio",
    mode: str = "intersect",
    threshold: float | None = None,
    calibrate: str | None = None,
    memory_budget: int | str | None = None,
    index: str = "flat",
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    src_embeddings: str | os.PathLike | None = None,
    tgt_embeddings: str | os.PathLike | None = None,
    shard_size: int | None = None,
    nprobe: int | None = None,
    show_progress: bool = True,
    backend: str = "torch",
    ray: bool | str = False,
) -> tuple[int, float]:
    """Mine two text files (one sentence a line) into ``output``: ``score<TAB>src<TAB>tgt``, best first.

    Duplicate (and empty) lines are dropped on each side first; sentences are encoded in streamed
    chunks to memmaps in ``workdir`` (default ``OUTPUT.work``, kept for ``resume`` until success),
    or taken from ``src_embeddings``/``tgt_embeddings`` (``.npy`` rows aligned with the lines).
    ``backend``: the engine a model given by name runs on (see :mod:`mlembed.backends`). ``ray``: encode
    and search on a Ray cluster (``True`` or an address; see :func:`mine_embeddings`), same pairs.
    The threshold is ``threshold`` if given, else calibrated on ``calibrate`` (a
    :func:`mlembed.data.read_pairs` spec), else :data:`DEFAULT_THRESHOLDS` for the margin.

    Returns:
        ``(pairs written, threshold used)``.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); s, t = os.path.join(d, "en.txt"), os.path.join(d, "de.txt")
        >>> _ = open(s, "w").write("The cat sleeps.\\nStocks fell.\\n"); _ = open(t, "w").write("Stocks fell.\\nThe cat sleeps.\\n")
        >>> mine_files(s, t, os.path.join(d, "out.tsv"), threshold=1.0, show_progress=False)
        (2, 1.0)
    """
    from tqdm.auto import tqdm

    from mlembed.models import fingerprint, load_model
    from mlembed.textstore import LineStore, unique_line_ids

    try:  # options are checked before minutes of encoding
        parse_size(memory_budget)
    except ValueError as exc:
        raise ValueError(f"--memory-budget: {exc}") from None
    if margin not in ("ratio", "distance", "absolute") or mode not in ("forward", "backward", "intersect", "max"):
        raise ValueError(
            f"margin {margin!r} / mode {mode!r}: expected ratio|distance|absolute / forward|backward|intersect|max"
        )
    if k < 1:
        raise ValueError(f"--k {k}: expected a positive neighbourhood size")
    for path in (src, tgt):
        if not Path(path).is_file():
            raise DataError("no such file (expected a text file, one sentence a line)", path)
    output = Path(output)
    work = Path(workdir) if workdir is not None else output.with_name(output.name + ".work")
    if work.exists() and not resume and (work / "knn" / "manifest.json").exists():
        raise DataError("holds an unfinished run: pass --resume (resume=True) to continue it, or remove it", work)
    work.mkdir(parents=True, exist_ok=True)
    calibrating = threshold is None and calibrate
    # on Ray the workers encode: the driver loads the model only to calibrate
    need_model = calibrating or (not ray and (src_embeddings is None or tgt_embeddings is None))
    if isinstance(model, (str, os.PathLike)):
        fp = fingerprint(model)
        if need_model:
            from mlembed.backends import load_backend

            model = load_backend(load_model(model), backend)
        elif not ray:
            model = None  # (on Ray its name goes to the workers)
    else:
        fp = fingerprint(model)
    sides = []
    for name, text, emb in (("src", src, src_embeddings), ("tgt", tgt, tgt_embeddings)):
        ids, n_lines = unique_line_ids(text)
        if not len(ids):
            raise DataError("no non-empty lines to mine", text)
        if ray and emb is None:
            sides.append((ids, _encode_unique_on_ray(text, ids, work / name, model, backend, ray, show_progress)))
        else:
            sides.append((ids, _embed_unique(text, ids, n_lines, work / f"{name}.npy", model, emb, fp, show_progress)))
    if threshold is None:
        threshold = (
            calibrate_from_spec(calibrate, model, k, margin, mode).threshold
            if calibrate
            else DEFAULT_THRESHOLDS[margin]
        )
    pairs = mine_embeddings(
        sides[0][1],
        sides[1][1],
        k=k,
        margin=margin,
        mode=mode,
        threshold=threshold,
        memory_budget=memory_budget,
        index=index,
        workdir=work / "knn",
        resume=resume,
        shard_size=shard_size,
        nprobe=nprobe,
        show_progress=show_progress,
        ray=ray,
    )
    src_store = LineStore.build(src, offsets=work / "src.lines.npy")
    tgt_store = LineStore.build(tgt, offsets=work / "tgt.lines.npy")
    src_ids, tgt_ids = sides[0][0], sides[1][0]
    with atomic_open(output) as fh:
        for score, i, j in tqdm(
            zip(pairs.scores.tolist(), pairs.src_idx, pairs.tgt_idx),
            total=len(pairs),
            desc="write",
            unit="pair",
            disable=not show_progress,
        ):
            fh.write(
                f"{score:.6f}\t{tsv_field(src_store[int(src_ids[i])])}\t{tsv_field(tgt_store[int(tgt_ids[j])])}\n"
            )
    src_store.close()
    tgt_store.close()
    shutil.rmtree(work, ignore_errors=True)
    return len(pairs), float(threshold)
