"""k-nearest-neighbour search in both directions between two embedding sets, in bounded memory.

Embeddings stay on disk (``.npy`` memmaps) and are read shard by shard. Two back ends:

* ``flat`` (exact): one inner-product block ``S = X[q-shard] @ Y[d-shard].T`` feeds both the forward
  heaps (rows of ``S``) and the backward heaps (columns of ``S``), merged with FAISS's
  :class:`faiss.ResultHeap`; each block is computed once, so both directions cost what one costs with
  a FAISS flat index. With ``precision="fp32"`` (the default) the block is a float32 sgemm and the heaps
  keep ``k``; with ``"int8"`` it is an int8 product with exact int32 sums (each side quantised with one
  scale), the heaps keep ``2k + 4`` candidates and the exact rescoring of :func:`canonical` picks the ``k``
  best (the same candidates on every CPU, but slower than sgemm where measured: benchmarks/mining_e2e.py).
* any other FAISS index (``ivf``, ``hnsw``, ``ivfpq`` or a factory string, see
  :func:`mlembed.faiss_index.factory_string`): built once per direction on the database side (chunks
  added from the memmap), queried shard by shard. With ``centre`` each side is centred by its own mean row
  first (two languages' vectors sit apart by an offset, which then no longer steers which inverted lists an
  IVF query probes); a centred search asks the index for ``2k + 4`` candidates, rescores them exactly by
  :func:`canonical` (plain cosines) and keeps the ``k`` best. Measured on 200k x 200k mining
  (``benchmarks/results/mining_centring.md``) it raises F1 at the default nprobe but finds fewer of the
  exact search's pairs, so it is not the default.

:func:`exact_neighbours` finds the exact neighbours of chosen rows only (:mod:`mlembed.means` gives the rows of the
pairs an approximate search's margins could let through their exact neighbourhood means with it).

Peak memory is set by ``memory_budget`` (shard sizes follow from it), not by the number of vectors.
With a ``workdir`` every finished query shard is saved (atomic files plus a manifest), so a killed
run continues with ``resume=True`` where it stopped and returns exactly what an uninterrupted run
returns.

What a run is asked to do travels as one :class:`MiningOptions` (read here, by :mod:`mlembed.mine` and by
:mod:`mlembed.cluster.knn`); how it is cut into shards is decided once, by :func:`plan_shards`, whose
:class:`ShardPlan` the loop of :func:`knn_both_ways` or the Ray tasks of
:func:`mlembed.cluster.knn.knn_both_ways_ray` execute shard by shard (:func:`exact_shard`, :func:`search_shard`),
with the same :class:`Checkpoint`: the same shards, the same arithmetic, the same pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.arrays import Embeddings, open_embeddings, parse_size, read_rows, take_rows
from mlembed.faiss_index import build_faiss_index, mean_row, set_search_params
from mlembed.files import DataError, atomic_open, atomic_path

logger = logging.getLogger(__name__)

BASELINE_BYTES = 200 << 20  # interpreter + numpy + faiss, measured ~170 MB RSS before any data
PRECISIONS = ("int8", "fp32")  # scores of the exact search's blocks, see score_block
MEANS = ("exact", "found", "calibrated")  # how the margin's neighbourhood means are estimated, see mlembed.means


@dataclass(frozen=True)
class MiningOptions:
    """What a mining run is asked to do, in one object that every layer reads: :func:`mlembed.mine.mine_files`,
    :func:`mlembed.mine.mine_embeddings`, :func:`knn_both_ways` and :func:`mlembed.cluster.knn.knn_both_ways_ray`
    (each the fields it needs; the k-NN ignores the margin's). ``mlembed mine`` fills it from its flags.

    Example:
        >>> from dataclasses import replace
        >>> options = MiningOptions(k=8, index="ivf")
        >>> replace(options, nprobe=32).nprobe, options.margin, options.memory_budget is None
        (32, 'ratio', True)
    """

    k: int = 4
    """Neighbours per row: the k-NN's k and the margin's neighbourhood (capped at the other side's size)."""
    margin: str = "ratio"
    """How candidates are scored: ``ratio``, ``distance`` or ``absolute`` (:mod:`mlembed.margin`)."""
    mode: str = "intersect"
    """Which pairs are kept: ``forward``, ``backward``, ``intersect`` or ``max``."""
    threshold: float | None = None
    """Keep pairs scoring ``>= threshold``; ``None``: every candidate (``mine_files``: calibrated or the margin's default)."""
    index: str = "flat"
    """``flat`` (exact) or an approximate FAISS index: ``ivf``, ``ivfsq``, ``hnsw``, ``ivfpq`` or a factory string."""
    memory_budget: int | str | None = None
    """Working-set size of the k-NN in bytes or as ``"1G"`` (``None``: 2 GiB); the shard sizes follow from it."""
    precision: str = "fp32"
    """Exact search: rank candidates by ``fp32`` or ``int8`` products before the exact rescoring (:func:`score_block`)."""
    centre: bool = False
    """Approximate index: find candidates with each side centred by its own mean row."""
    means: str = "exact"
    """Approximate index: the margin's neighbourhood means ``exact`` for the rows of every pair that can score
    ``means_cut`` or more, from the neighbours ``found``, or ``calibrated`` on exact samples (:mod:`mlembed.means`)."""
    means_cut: float | None = None
    """``means="exact"``: pairs that can score this much get exact means (``None``: ``threshold``, raised to the
    margin's default threshold where it is unset or lower)."""
    nprobe: int | None = None
    """IVF lists probed per query (``None``: 1/16 of them, see :func:`mlembed.faiss_index.set_search_params`)."""
    ef_search: int | None = None
    """HNSW search depth (``None``: FAISS's default)."""
    train_size: int | None = None
    """Vectors an approximate index is trained on (``None``: the default sample of :mod:`mlembed.faiss_index`)."""
    shard_size: int | None = None
    """Query rows per shard, the resume granularity (``None``: from the memory budget)."""
    db_shard_size: int | None = None
    """Database rows per block of the exact search (``None``: from the memory budget)."""
    workdir: str | os.PathLike | None = None
    """Where resumable state goes: the k-NN's shard files and manifest (``mine_files``: its whole work folder)."""
    resume: bool = False
    """Continue a killed run from ``workdir`` (a folder holding a run is refused without it)."""
    ray: bool | str = False
    """``mine_embeddings``/``mine_files`` only: run on a Ray cluster (``True``: ``$RAY_ADDRESS`` or a local one; a
    string: that address)."""

    def check(self) -> None:
        """Refuse options a run would fail on, before minutes of encoding (the messages name ``mlembed mine``'s flags).

        Example:
            >>> MiningOptions(k=0).check()
            Traceback (most recent call last):
            ...
            ValueError: --k 0: expected a positive neighbourhood size
        """
        try:
            parse_size(self.memory_budget)
        except ValueError as exc:
            raise ValueError(f"--memory-budget: {exc}") from None
        check_precision(self.index, self.precision)
        margins, modes = ("ratio", "distance", "absolute"), ("forward", "backward", "intersect", "max")
        if self.margin not in margins or self.mode not in modes:
            raise ValueError(
                f"margin {self.margin!r} / mode {self.mode!r}: expected ratio|distance|absolute / "
                "forward|backward|intersect|max"
            )
        if self.k < 1:
            raise ValueError(f"--k {self.k}: expected a positive neighbourhood size")
        if self.means not in MEANS:
            raise ValueError(f"--means {self.means!r}: expected one of {', '.join(MEANS)}")


@dataclass
class Neighbours:
    """``k`` nearest neighbours of each query row: ``sims`` (cosine, descending) and ``ids`` (-1 = none)."""

    sims: np.ndarray
    ids: np.ndarray


def canonical(queries: Embeddings, db: Embeddings, nn: Neighbours, block_bytes: int = 32 << 20) -> Neighbours:
    """``nn`` with each similarity recomputed as one exact float64 dot product rounded to float32, and each
    row's neighbours ordered by (similarity descending, id ascending).

    BLAS sums a dot product in an order set by the matrix shapes and thread count, so the same pair scores
    differently (by ~1e-7) in a shard of another size, a Ray task on one thread or another CPU's kernel; a
    margin or an order between near-equal candidates then flips. Products of float32 numbers are exact in
    float64 and their sum is off by ~1e-16, far below float32's step, so the rescored similarity is the same
    wherever it is computed. Reads ``block_bytes`` of neighbour rows at a time.

    Example:
        >>> x = np.eye(2, dtype="float32")
        >>> nn = Neighbours(np.array([[0.0, 1.0]], "float32"), np.array([[1, 0]]))
        >>> out = canonical(x[:1], x, nn); out.ids.tolist(), out.sims.tolist()
        ([[0, 1]], [[1.0, 0.0]])
    """
    queries, db = open_embeddings(queries), open_embeddings(db)
    sims, ids = nn.sims.copy(), nn.ids.copy()
    n, k = ids.shape
    rows_per_block = max(1, block_bytes // max(1, k * db.shape[1] * 8))
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        part = ids[start:stop]
        valid = part >= 0
        wanted = np.unique(part[valid])
        if not len(wanted):
            continue
        # a fresh mapping per block: pages read here are unmapped again, so RSS stays bounded
        mapped = isinstance(db, np.memmap) and db.filename
        source = np.memmap(db.filename, db.dtype, "r", db.offset, db.shape) if mapped else db
        neighbours = np.asarray(source[wanted], dtype=np.float64)
        del source
        q = read_rows(queries, start, stop).astype(np.float64)
        r, c = np.nonzero(valid)
        dots = np.einsum("ij,ij->i", q[r], neighbours[np.searchsorted(wanted, part[r, c])])
        sims[start + r, c] = dots.astype(np.float32)
    order = np.lexsort((np.where(ids >= 0, ids, np.iinfo(np.int64).max), np.where(ids >= 0, -sims, np.inf)))
    return Neighbours(np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1))


def shard_sizes(n_query: int, n_db: int, dim: int, k: int, memory_budget: int) -> tuple[int, int]:
    """Query and database shard sizes so that the working set fits ``memory_budget`` bytes.

    The working set is the result heaps (12 bytes per neighbour, both directions), one query and one
    database shard of vectors, and the similarity block with its transpose (8 bytes per entry).

    Example:
        >>> shard_sizes(1_000_000, 1_000_000, 384, 4, 1 << 30)
        (8192, 8192)
    """
    heaps = 12 * k * (n_query + n_db)
    free = memory_budget - BASELINE_BYTES - heaps
    if free < 8 << 20:
        raise ValueError(
            f"memory budget {memory_budget / 2**20:.0f} MiB is too small for {n_query} x {n_db} vectors "
            f"(result heaps alone need {heaps / 2**20:.0f} MiB plus ~{BASELINE_BYTES >> 20} MiB of libraries)"
        )
    # 8 s^2 (block + transpose) + 8 s d (two shards) <= free
    s = (-8 * dim + math.sqrt(64 * dim * dim + 32 * free)) / 16
    s = 1 << max(6, min(14, int(math.log2(max(s, 64)))))  # powers of two: 64 .. 16384
    return min(s, max(n_query, 1)), min(s, max(n_db, 1))


def approx_shard_size(n_total: int, dim: int, k: int, memory_budget: int) -> int:
    """Query shard size for approximate search: a quarter of the budget left after heaps and libraries
    (the other three quarters are for the index itself).

    Example:
        >>> approx_shard_size(2_000_000, 384, 4, 1 << 30)
        65536
    """
    free = memory_budget - BASELINE_BYTES - 12 * k * n_total
    s = max(free // 4, 0) // (4 * dim + 24 * k)
    return 1 << max(10, min(18, int(math.log2(max(s, 1024)))))


def _int8_scale(arr: np.ndarray) -> float:
    """``127 / max |x|`` over every row of ``arr`` (read in blocks): one scale per side, so int8 scores of
    rows quantised in different shards stay comparable."""
    peak = 0.0
    for start in range(0, len(arr), 65536):
        peak = max(peak, float(np.abs(read_rows(arr, start, min(start + 65536, len(arr)))).max(initial=0.0)))
    return 127.0 / peak if peak > 0 else 1.0


def _int8(rows: np.ndarray, scale: float) -> Any:
    """``rows`` as an int8 torch tensor, ``round(x * scale)``."""
    import torch

    return torch.from_numpy(np.rint(rows * np.float32(scale)).astype(np.int8))


def block_scales(src: np.ndarray, tgt: np.ndarray, precision: str) -> tuple[float, float] | None:
    """The int8 scales of both sides for ``precision="int8"``, ``None`` for ``"fp32"`` (see
    :func:`check_precision`)."""
    return (_int8_scale(src), _int8_scale(tgt)) if precision == "int8" else None


def score_block(xq: np.ndarray, rows: np.ndarray, scales: tuple[float, float] | None) -> np.ndarray:
    """``xq @ rows.T`` as float32: by sgemm (``scales=None``), or as the int32 sums of the int8-quantised
    rows (exact integers, so the same on every CPU and thread count; only their order matters).

    Example:
        >>> x = np.array([[1.0, 0.0], [0.6, 0.8]], "float32")
        >>> score_block(x, x, (127.0, 127.0)).tolist()  # [127, 0] and [76, 102]: cosine x 127^2, rounded
        [[16129.0, 9652.0], [9652.0, 16180.0]]
    """
    if scales is None:
        return xq @ rows.T
    import torch

    return torch._int_mm(_int8(xq, scales[0]), _int8(rows, scales[1]).T).numpy().astype(np.float32)


def check_precision(index: str, precision: str) -> None:
    """Refuse a ``precision`` the search would not use: ``int8`` ranks the exact (``flat``) search's candidates;
    an approximate index scores with its own codes.

    Example:
        >>> check_precision("ivfsq", "int8")
        Traceback (most recent call last):
        ...
        ValueError: k-NN precision 'int8' applies to the exact search (index flat), not to index 'ivfsq': use fp32 there
    """
    if precision not in PRECISIONS:
        raise ValueError(f"k-NN precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "fp32" and index != "flat":
        raise ValueError(
            f"k-NN precision {precision!r} applies to the exact search (index flat), not to index {index!r}: "
            "use fp32 there"
        )


def heap_size(k: int, precision: str) -> int:
    """Neighbours each heap keeps: ``k`` for float32 scores, ``2k + 4`` candidates for int8 ones, which
    :func:`canonical` rescores exactly. Quantising each side with one scale moves a cosine by ~1e-3 (std);
    on mining_e2e's 200k x 200k vectors the exact top 4 of each of 1,000 queries was in its int8 top 8.

    Example:
        >>> heap_size(4, "int8"), heap_size(4, "fp32")
        (12, 4)
    """
    return 2 * k + 4 if precision == "int8" else k


def best(nn: Neighbours, k: int) -> Neighbours:
    """The first ``k`` columns of canonically ordered neighbours."""
    return Neighbours(np.ascontiguousarray(nn.sims[:, :k]), np.ascontiguousarray(nn.ids[:, :k]))


def shifted(rows: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """``rows - shift`` (``rows`` itself without a shift): queries centred as their index's rows were."""
    return rows if shift is None else rows - shift


def _search(index: object, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, or for IVF indexes FAISS's ``big_batch_search`` (queries bucketed by inverted
    list, distances by BLAS: ~2x faster for large query sets)."""
    import contextlib
    import io

    import faiss
    from faiss.contrib.big_batch_search import big_batch_search

    direct = type(index) is faiss.IndexIVFFlat or (
        type(index) is faiss.IndexIVFScalarQuantizer and not index.by_residual
    )
    if direct and len(queries) >= 4096:  # (its residual decoding is wrong for inner product: not used there)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress even with verbose=0
            return big_batch_search(index, queries, k, verbose=0)
    return index.search(queries, k)


def search_shard(
    index: Any, queries: np.ndarray, q0: int, q1: int, width: int, shift: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` best of ``index`` (similarities, ids) for query rows ``q0:q1``, centred by ``shift`` as the
    index's rows were (``None``: as they are): one shard of an approximate search, in one process or a Ray task.

    Example:
        >>> import faiss
        >>> index = faiss.IndexFlatIP(2); index.add(np.eye(2, dtype="float32"))
        >>> search_shard(index, np.eye(2, dtype="float32")[::-1], 0, 1, 1, None)[1].tolist()
        [[1]]
    """
    return _search(index, shifted(read_rows(queries, q0, q1), shift), width)


class Checkpoint:
    """Per-shard result files plus a manifest in ``workdir``; every file written atomically.

    ``signature`` (a :class:`ShardPlan`'s) is stored in the manifest: a folder holding a run is refused without
    ``resume``, and one written for other inputs or settings always. ``workdir=None`` keeps nothing.

    Example:
        >>> import tempfile
        >>> ckpt = Checkpoint(tempfile.mkdtemp(), {"k": 4}, resume=False)
        >>> ckpt.commit("forward", 0, ckpt.save_arrays("forward-00000.npz", sims=np.ones((2, 1)), ids=np.zeros((2, 1))))
        >>> Checkpoint(ckpt.dir, {"k": 4}, resume=True).done("forward")
        {'0': 'forward-00000.npz'}
    """

    def __init__(self, workdir: str | os.PathLike | None, signature: dict, resume: bool):
        self.dir = Path(workdir) if workdir is not None else None
        self.signature = signature
        self.state: dict = {"signature": signature, "done": {}}
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = self.dir / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if not resume:
                raise DataError(
                    "holds a previous run: pass --resume (resume=True) to continue it, or remove it", manifest
                )
            if old.get("signature") != signature:
                raise DataError(
                    f"written for different inputs or settings: {old.get('signature')} != {signature}", manifest
                )
            self.state = old

    def done(self, stage: str) -> dict:
        """``{shard number (str): file name}`` of the stage's finished shards."""
        return self.state["done"].setdefault(stage, {})

    def save_arrays(self, name: str, **arrays: np.ndarray) -> str | None:
        """``arrays`` saved atomically as ``name`` in the folder (its name; ``None`` without a folder)."""
        if self.dir is None:
            return None
        with atomic_path(self.dir / name, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return name

    def load_arrays(self, name: str) -> dict:
        """The arrays saved as ``name``."""
        assert self.dir is not None
        with np.load(self.dir / name) as data:
            return {key: data[key] for key in data.files}

    def commit(self, stage: str, shard: int, info: object) -> None:
        """Record a finished shard (the manifest rewritten atomically)."""
        self.done(stage)[str(shard)] = info
        if self.dir is not None:
            with atomic_open(self.dir / "manifest.json") as fh:
                json.dump(self.state, fh)

    def gather(self, stage: Stage, width: int) -> Neighbours:
        """The neighbours (``sims``, ``ids``) of the stage's finished shards, in their rows; ``-inf``/``-1`` elsewhere."""
        sims = np.full((stage.rows, width), -np.inf, dtype=np.float32)
        ids = np.full((stage.rows, width), -1, dtype=np.int64)
        for shard, name in self.done(stage.name).items():
            q0, q1 = stage.shards[int(shard)]
            part = self.load_arrays(name)
            sims[q0:q1], ids[q0:q1] = part["sims"], part["ids"]
        return Neighbours(sims, ids)


def _probe(arr: np.ndarray) -> list:
    """Shape and a hash of every row (read in blocks: ~1 s per GB), so a resumed run with other vectors is refused."""
    digest = hashlib.blake2b(digest_size=8)
    for start in range(0, len(arr), 65536):
        digest.update(np.ascontiguousarray(read_rows(arr, start, min(start + 65536, len(arr)))).tobytes())
    return [int(arr.shape[0]), int(arr.shape[1]), digest.hexdigest()]


@dataclass(frozen=True)
class Stage:
    """One pass of a k-NN plan: the rows of one side, cut into query shards."""

    name: str
    """``exact`` (both directions from one pass over the sources), ``forward`` or ``backward``: the checkpoint's
    stage and the stem of its files."""
    queries: str
    """The side whose rows are the queries: ``src`` or ``tgt`` (the other side is the database)."""
    rows: int
    """Rows of that side."""
    shards: tuple[tuple[int, int], ...]
    """``(first row, end row)`` of each shard; a shard's number is its position."""


@dataclass(frozen=True)
class ShardPlan:
    """How a k-NN both ways is cut into shards, decided once by :func:`plan_shards` from the sides' sizes and a
    :class:`MiningOptions`; the loop of :func:`knn_both_ways` and the Ray tasks of
    :func:`mlembed.cluster.knn.knn_both_ways_ray` execute the same plan, so they find the same neighbours."""

    index: str
    """``flat`` (exact) or the approximate index's kind."""
    k: int
    """Neighbours per row of the result."""
    memory_budget: int
    """The working-set size in bytes the shard sizes were derived from."""
    query_shard: int
    """Query rows per shard (the resume granularity)."""
    db_shard: int
    """Database rows per block of the exact search."""
    heap: int
    """Neighbours each query row's heap keeps before the final ``k``: :func:`heap_size` (exact) or the
    candidates asked of the index (approximate, :func:`candidates`)."""
    widths: tuple[int, int]
    """``heap`` capped at the other side's size: neighbours kept per source row and per target row."""
    stages: tuple[Stage, ...]
    """``(exact,)``, or ``(forward, backward)`` for an approximate index."""
    scales: tuple[float, float] | None
    """The int8 scales of both sides (exact search with ``precision="int8"``), else ``None``."""
    signature: dict = field(hash=False)
    """What a resumed run's manifest must match: both sides' shapes and row hashes, the settings that change the
    result and the shard sizes (keys and values as they always were, so older work folders resume)."""


def plan_shards(src: Embeddings, tgt: Embeddings, options: MiningOptions) -> ShardPlan:
    """The shards of a k-NN both ways between ``src`` and ``tgt`` under ``options``: sizes from the memory budget
    (:func:`shard_sizes`, :func:`approx_shard_size`) unless ``options.shard_size``/``db_shard_size`` force them,
    heap widths, int8 scales and the resume signature (which reads every row once to hash it).

    Example:
        >>> x = np.eye(4, dtype="float32")
        >>> plan = plan_shards(x, x[:3], MiningOptions(k=2, shard_size=3))
        >>> [s.shards for s in plan.stages], plan.widths, plan.signature["shards"]
        ([((0, 3), (3, 4))], (2, 2), [3, 3])
        >>> [s.name for s in plan_shards(x, x, MiningOptions(index="ivf", centre=True)).stages]
        ['forward', 'backward']
    """
    src, tgt = open_embeddings(src), open_embeddings(tgt)
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(f"source and target dimensions differ: {src.shape[1]} != {tgt.shape[1]}")
    budget = parse_size(options.memory_budget)
    check_precision(options.index, options.precision)
    exact = options.index == "flat"
    k, nq, nb, dim = options.k, len(src), len(tgt), src.shape[1]
    qs, ds = shard_sizes(nq, nb, dim, heap_size(k, options.precision) if exact else k, budget)
    if exact:
        heap = heap_size(k, options.precision)
    else:  # approximate search needs no block: bigger query shards, fewer passes over the lists
        heap = candidates(k, max(nq, nb), options.centre)  # (the result heaps hold this many a query)
        qs = approx_shard_size(nq + nb, dim, heap, budget)
    qs, ds = int(options.shard_size or qs), int(options.db_shard_size or ds)
    if exact:
        extra: dict = {"precision": options.precision}
    else:
        extra = {
            "nprobe": options.nprobe,
            "ef_search": options.ef_search,
            "train_size": options.train_size,
            "centre": options.centre,
        }

    def stage(name: str, queries: str, n: int) -> Stage:
        return Stage(name, queries, n, tuple((q0, min(q0 + qs, n)) for q0 in range(0, n, qs)))

    return ShardPlan(
        index=options.index,
        k=k,
        memory_budget=budget,
        query_shard=qs,
        db_shard=ds,
        heap=heap,
        widths=(min(heap, nb), min(heap, nq)),
        stages=(stage("exact", "src", nq),) if exact else (stage("forward", "src", nq), stage("backward", "tgt", nb)),
        scales=block_scales(src, tgt, options.precision) if exact else None,
        signature={
            "src": _probe(src),
            "tgt": _probe(tgt),
            "k": k,
            "index": options.index,
            "shards": [qs, ds],
            **extra,
        },
    )


def knn_both_ways(
    src: Embeddings, tgt: Embeddings, options: MiningOptions | None = None, show_progress: bool = False
) -> tuple[Neighbours, Neighbours]:
    """The ``k`` most similar (inner product) targets of every source row, and sources of every target row.

    Args:
        src, tgt: L2-normalised ``(n, d)`` float arrays, memmaps or ``.npy`` paths.
        options: what this reads of a :class:`MiningOptions` (default ``MiningOptions()``): ``k``, ``index``
            (``flat``, exact, or an approximate FAISS index), ``memory_budget``, ``precision`` (how the exact
            search scores its blocks before the exact rescoring, see :func:`score_block`), ``centre``
            (approximate indexes: candidates found with each side centred by its mean row, see above),
            ``nprobe``/``ef_search``/``train_size`` (see :mod:`mlembed.index`), ``shard_size``/``db_shard_size``
            (forced shard sizes), ``workdir`` (per-shard results and the manifest) and ``resume``. The shards are
            :func:`plan_shards`'s.
        show_progress: a progress bar per stage.

    Returns:
        ``(forward, backward)``: neighbours of each source among targets, of each target among sources,
        scored by :func:`canonical` (the same figures whatever the shards, threads or CPU).

    Example:
        >>> x = np.eye(3, dtype="float32"); y = x[[2, 0, 1]]
        >>> fwd, bwd = knn_both_ways(x, y, MiningOptions(k=1))
        >>> fwd.ids.ravel().tolist(), bwd.ids.ravel().tolist()
        ([1, 2, 0], [2, 0, 1])
    """
    options = options or MiningOptions()
    src, tgt = open_embeddings(src), open_embeddings(tgt)
    plan = plan_shards(src, tgt, options)
    ckpt = Checkpoint(options.workdir, plan.signature, options.resume)
    if plan.index == "flat":
        fwd, bwd = _exact(src, tgt, plan, ckpt, show_progress)
    else:
        forward, backward = plan.stages
        fwd = _approximate(src, tgt, forward, plan.widths[0], options, ckpt, show_progress)
        bwd = _approximate(tgt, src, backward, plan.widths[1], options, ckpt, show_progress)
    return best(canonical(src, tgt, fwd), plan.k), best(canonical(tgt, src, bwd), plan.k)


def candidates(k: int, n_db: int, centre: bool) -> int:
    """Neighbours an approximate search asks its index for: ``2k + 4`` when centred (centred scores rank a
    little differently from cosines, so a few more are rescored), else ``k``; at most ``n_db``.

    Example:
        >>> candidates(4, 1000, True), candidates(4, 1000, False), candidates(4, 6, True)
        (12, 4, 6)
    """
    return min(2 * k + 4 if centre else k, n_db)


def _add_columns(heap: Any, b0: int, block: np.ndarray, query_ids: np.ndarray) -> None:
    """Add the columns of ``block`` (queries x database rows ``b0..``) to the database rows' heaps.

    That is adding ``block.T``, but transposing a large block costs more than the matrix product that
    made it. Once a heap row is full, only entries above its current k-th best (the heap top) can
    enter it, and after the first query shard these are few: they are found in one row-major pass and
    added as a small padded matrix (queries in increasing order, as the transposed add would see them).
    """
    cols = np.arange(b0, b0 + block.shape[1], dtype=np.int64)
    top = heap.D[b0 : b0 + block.shape[1], 0]  # a min-heap of the k best: its top is the k-th best
    full = bool((heap.I[b0 : b0 + block.shape[1], 0] >= 0).all())  # empty slots hold id -1 (and -FLT_MAX)
    above = block > top if full else None
    if above is None or np.count_nonzero(above) > block.size // 16:  # filling up: the plain transposed add
        heap.add_result_subset(cols, np.ascontiguousarray(block.T), query_ids)
        return
    qi, dj = np.nonzero(above)
    if len(qi) == 0:
        return
    order = np.argsort(dj, kind="stable")  # by column, queries ascending within a column
    qi, dj = qi[order], dj[order]
    starts = np.flatnonzero(np.r_[True, dj[1:] != dj[:-1]])
    counts = np.diff(np.r_[starts, len(dj)])
    group = np.repeat(np.arange(len(starts)), counts)
    pos = np.arange(len(dj)) - np.repeat(starts, counts)
    sims = np.full((len(starts), counts.max()), -np.inf, dtype=np.float32)  # -inf never enters a full heap
    ids = np.full(sims.shape, -1, dtype=np.int64)
    sims[group, pos] = block[qi, dj]
    ids[group, pos] = query_ids[qi]
    heap.add_result_subset(cols[dj[starts]], sims, ids)


def exact_shard(src: np.ndarray, tgt: np.ndarray, q0: int, q1: int, plan: ShardPlan, backward: Any) -> Neighbours:
    """One shard of the exact search: the forward neighbours of source rows ``q0:q1`` among all targets (``plan``'s
    ``widths[0]`` a row, in heap order), each block of scores also added, by columns, to ``backward`` (a
    :class:`faiss.ResultHeap` over all target rows, ``widths[1]`` wide: the whole search's, or a Ray task's own).

    Example:
        >>> import faiss
        >>> x = np.eye(3, dtype="float32"); plan = plan_shards(x, x, MiningOptions(k=1))
        >>> bwd = faiss.ResultHeap(3, 1, keep_max=True)
        >>> exact_shard(x, x[[2, 0, 1]], 0, 2, plan, bwd).ids.tolist()
        [[1], [2]]
    """
    import faiss

    nb = len(tgt)
    xq = read_rows(src, q0, q1)
    heap = faiss.ResultHeap(q1 - q0, plan.widths[0], keep_max=True)
    rows, query_ids = np.arange(q1 - q0, dtype=np.int64), np.arange(q0, q1, dtype=np.int64)
    for b0 in range(0, nb, plan.db_shard):
        b1 = min(b0 + plan.db_shard, nb)
        block = score_block(xq, read_rows(tgt, b0, b1), plan.scales)
        heap.add_result_subset(rows, block, np.arange(b0, b1, dtype=np.int64))
        _add_columns(backward, b0, block, query_ids)
    heap.finalize()
    return Neighbours(heap.D, heap.I)


def _add_bf16_block(heap: Any, xq: np.ndarray, block: np.ndarray, b0: int) -> None:
    """Add the ``heap.k`` best of ``xq @ block.T`` per query, the product in bf16 (database rows ``b0..``)."""
    import torch

    scores = torch.from_numpy(xq).bfloat16() @ torch.from_numpy(np.ascontiguousarray(block)).bfloat16().T
    top = torch.topk(scores, min(heap.k, len(block)), dim=1)
    heap.add_result(top.values.float().numpy(), (top.indices + b0).numpy())


def exact_neighbours(
    queries: Embeddings,
    rows: np.ndarray,
    db: Embeddings,
    k: int,
    memory_budget: int | str | None = None,
    show_progress: bool = False,
    desc: str = "k-NN (exact rows)",
) -> Neighbours:
    """The exact ``k`` nearest neighbours in ``db`` of the query rows ``rows`` only (one row of the result per
    entry of ``rows``), scored by :func:`canonical`: what the exact search finds for them, at ``len(rows) / n``
    of its cost. Query rows are gathered and the database read in blocks sized by ``memory_budget``
    (:func:`shard_sizes`), so memory does not grow with either side. Where encoding runs bf16 (a CPU with native
    bf16, or ``$MLEMBED_PRECISION=bf16``: :func:`mlembed.encoding.resolve_precision`) the blocks are bf16 products
    (~3x sgemm with AMX) that rank ``2k + 4`` candidates, rescored exactly as int8 candidates are (:func:`heap_size`);
    a row whose ``k``-th rescored similarity is not above its last candidate's bf16 score plus the bf16 error
    bound (:data:`BF16_ERROR`; ~1 % of rows on mining_e2e's vectors) could miss a neighbour, and is ranked again by
    float32 products. Elsewhere float32 sgemm ranks ``k``.

    Example:
        >>> x = np.eye(3, dtype="float32")
        >>> exact_neighbours(x, np.array([2]), x[[1, 2, 0]], k=1).ids.tolist()
        [[1]]
    """
    from tqdm.auto import tqdm

    from mlembed.encoding import resolve_precision

    queries, db = open_embeddings(queries), open_embeddings(db)
    rows = np.asarray(rows, dtype=np.int64)
    width = min(k, len(db))
    bf16 = resolve_precision("auto") == "bf16"
    wide = min(heap_size(width, "int8"), len(db)) if bf16 else width
    qs, ds = shard_sizes(len(rows), len(db), db.shape[1], wide, parse_size(memory_budget))
    sims = np.full((len(rows), width), -np.inf, dtype=np.float32)
    ids = np.full((len(rows), width), -1, dtype=np.int64)
    bar = tqdm(total=len(rows), unit="row", desc=desc, disable=not show_progress)
    doubt = []
    for q0 in range(0, len(rows), qs):
        q1 = min(q0 + qs, len(rows))
        xq = take_rows(queries, rows[q0:q1])  # (read, not mapped: scattered rows would stay resident)
        ranked, longest = _ranked(xq, db, wide, ds, bf16)
        found = best(canonical(xq, db, ranked), width)
        sims[q0:q1], ids[q0:q1] = found.sims, found.ids
        if bf16 and wide < len(db):
            # a row outside the bf16 top `wide` scores at most the heap's last bf16 score + the bf16 error bound:
            # where that could reach the k-th exact similarity, the query is ranked again by float32 products
            bound = ranked.sims[:, -1] + BF16_ERROR * np.linalg.norm(xq, axis=1) * longest
            doubt.append(q0 + np.nonzero(found.sims[:, -1] <= bound)[0])
        bar.update(q1 - q0)
    bar.close()
    doubt = np.concatenate(doubt) if doubt else np.zeros(0, dtype=np.int64)
    for d0 in range(0, len(doubt), qs):  # (one more read of the database for all of them)
        part = doubt[d0 : d0 + qs]
        xq = take_rows(queries, rows[part])
        again = best(canonical(xq, db, _ranked(xq, db, width, ds, False)[0]), width)
        sims[part], ids[part] = again.sims, again.ids
    if len(doubt):
        logger.debug(f"{desc}: {len(doubt):,} of {len(rows):,} rows ranked again by float32 products (bf16 too close)")
    return Neighbours(sims, ids)


#: Bound of ``|bf16 product - exact product| / (|q| |v|)`` as :func:`_add_bf16_block` computes it: both sides
#: rounded to bf16 (2u + u^2, u = 2^-8), fp32 accumulation (d 2^-24 at d <= 4096) and the product rounded to bf16 (u)
BF16_ERROR = 3 * 2.0**-8 + 2.0**-16 + 4096 * 2.0**-24


def _ranked(xq: np.ndarray, db: Embeddings, wide: int, block: int, bf16: bool) -> tuple[Neighbours, float]:
    """The ``wide`` best rows of ``db`` for each query by bf16 or float32 products (database read ``block`` rows at a
    time), best first, and the longest database row (bf16 only, for the error bound; 0.0 otherwise)."""
    import faiss

    heap = faiss.ResultHeap(len(xq), wide, keep_max=True)
    local = np.arange(len(xq), dtype=np.int64)
    longest = 0.0
    for b0 in range(0, len(db), block):
        b1 = min(b0 + block, len(db))
        rows = read_rows(db, b0, b1)
        if bf16:
            longest = max(longest, float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max())))
            _add_bf16_block(heap, xq, rows, b0)
        else:
            heap.add_result_subset(local, xq @ rows.T, np.arange(b0, b1, dtype=np.int64))
    heap.finalize()
    return Neighbours(heap.D, heap.I), longest


def build_index(db: Embeddings, stage: str, options: MiningOptions, ckpt: Checkpoint, show_progress: bool) -> Any:
    """The FAISS index a stage of an approximate search queries: ``options.index`` built on ``db`` (centred by its
    mean row with ``options.centre``; trained on ``options.train_size`` rows) and saved as ``STAGE.faiss`` in the
    checkpoint's folder, if it has one, for a resumed run or Ray's tasks to open."""
    import faiss

    index = build_faiss_index(
        db,
        options.index,
        train_size=options.train_size,
        show_progress=show_progress,
        desc=f"index ({stage})",
        shift=mean_row(db) if options.centre else None,
    )
    if ckpt.dir is not None:
        with atomic_path(ckpt.dir / f"{stage}.faiss", suffix=".faiss") as tmp:
            faiss.write_index(index, str(tmp))
    return index


def restore_backward(ckpt: Checkpoint, stage: Stage, n_tgt: int, width: int) -> Any:
    """The exact search's backward heap over all ``n_tgt`` targets (not finalized) holding every finished shard's
    sources, from either executor's files: the single process keeps one running heap (``backward_heap``, with the
    shards it covers), a Ray task its own partial heap in its shard's file (``bwd_D``, ``bwd_I``). So a work folder
    started with ``--ray`` resumes without it, and the reverse, each shard counted once.

    Example:
        >>> import tempfile
        >>> ckpt = Checkpoint(tempfile.mkdtemp(), {}, resume=False)
        >>> part = dict(sims=np.zeros((1, 1)), ids=np.zeros((1, 1)), bwd_D=np.array([[0.5], [0.25]], "float32"))
        >>> ckpt.commit("exact", 0, ckpt.save_arrays("exact-00000.npz", bwd_I=np.array([[0], [0]]), **part))
        >>> heap = restore_backward(ckpt, Stage("exact", "src", 1, ((0, 1),)), n_tgt=2, width=1)
        >>> heap.finalize(); heap.D.tolist()
        [[0.5], [0.25]]
    """
    import faiss

    heap = faiss.ResultHeap(n_tgt, width, keep_max=True)
    done = ckpt.done(stage.name)
    covered: set[str] = set()
    if ckpt.state.get("backward_heap"):
        state = ckpt.load_arrays(ckpt.state["backward_heap"])
        heap.D[:], heap.I[:] = state["D"], state["I"]  # heap order is kept: the arrays are the heap's storage
        covered = set(ckpt.state.get("backward_heap_shards", done))  # (older folders: every finished shard)
    for shard, name in sorted(done.items(), key=lambda item: int(item[0])):
        if shard not in covered:  # a Ray task's shard: its partial heap is in its file
            part = ckpt.load_arrays(name)
            heap.add_result(np.ascontiguousarray(part["bwd_D"]), np.ascontiguousarray(part["bwd_I"]))
    return heap


def _exact(
    src: np.ndarray, tgt: np.ndarray, plan: ShardPlan, ckpt: Checkpoint, show_progress: bool
) -> tuple[Neighbours, Neighbours]:
    from tqdm.auto import tqdm

    (stage,) = plan.stages
    fwd = ckpt.gather(stage, plan.widths[0])  # restore finished shards
    bwd = restore_backward(ckpt, stage, len(tgt), plan.widths[1])
    done = ckpt.done(stage.name)
    todo = [(s, span) for s, span in enumerate(stage.shards) if str(s) not in done]
    bar = tqdm(
        total=len(stage.shards),
        initial=len(stage.shards) - len(todo),
        unit="shard",
        desc="k-NN (exact)",
        disable=not show_progress,
    )
    for shard, (q0, q1) in todo:
        part = exact_shard(src, tgt, q0, q1, plan, bwd)
        fwd.sims[q0:q1], fwd.ids[q0:q1] = part.sims, part.ids
        fname = ckpt.save_arrays(f"exact-fwd-{shard:05d}.npz", sims=part.sims, ids=part.ids)
        previous = ckpt.state.get("backward_heap")
        ckpt.state["backward_heap"] = ckpt.save_arrays(f"exact-bwd-heap-{shard:05d}.npz", D=bwd.D, I=bwd.I)
        ckpt.state["backward_heap_shards"] = sorted([*done, str(shard)], key=int)
        ckpt.commit(stage.name, shard, fname)
        if previous and ckpt.dir is not None:  # only the latest heap state is needed
            (ckpt.dir / previous).unlink(missing_ok=True)
        bar.update(1)
    bar.close()
    bwd.finalize()
    return fwd, Neighbours(bwd.D.copy(), bwd.I.copy())


def _approximate(
    queries: np.ndarray,
    db: np.ndarray,
    stage: Stage,
    width: int,
    options: MiningOptions,
    ckpt: Checkpoint,
    show_progress: bool,
) -> Neighbours:
    import faiss
    from tqdm.auto import tqdm

    found = ckpt.gather(stage, width)  # restore finished shards
    done = ckpt.done(stage.name)
    todo = [(s, span) for s, span in enumerate(stage.shards) if str(s) not in done]
    if not todo:
        return found
    cached = ckpt.dir / f"{stage.name}.faiss" if ckpt.dir is not None else None
    if cached is not None and cached.exists():
        fidx = faiss.read_index(str(cached))
    else:
        fidx = build_index(db, stage.name, options, ckpt, show_progress)
    set_search_params(fidx, nprobe=options.nprobe, ef_search=options.ef_search)
    query_shift = mean_row(queries) if options.centre else None
    bar = tqdm(
        total=len(stage.shards),
        initial=len(stage.shards) - len(todo),
        unit="shard",
        desc=f"k-NN ({stage.name})",
        disable=not show_progress,
    )
    for shard, (q0, q1) in todo:
        d, i = search_shard(fidx, queries, q0, q1, width, query_shift)
        found.sims[q0:q1], found.ids[q0:q1] = d, i
        ckpt.commit(stage.name, shard, ckpt.save_arrays(f"{stage.name}-{shard:05d}.npz", sims=d, ids=i))
        bar.update(1)
    bar.close()
    return found
