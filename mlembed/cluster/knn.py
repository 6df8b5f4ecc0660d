"""``mlembed mine --ray``: the k-NN of both directions as Ray tasks, one per query shard, merged by the driver.

Same shards, same arithmetic as :func:`mlembed.knn.knn_both_ways`, so the pairs are the same:

* exact: a task multiplies its source shard by every target block; it keeps its sources' top-k
  (forward, final) and, in a :class:`faiss.ResultHeap` over all targets, the top-k among its own sources
  (backward, partial). The driver merges the partial heaps: the top-k of the union is the top-k of all.
* approximate (IVF, HNSW, ...): the driver builds each direction's index once into the work folder (of the
  centred rows with ``centre``); tasks open it memory-mapped and search their query shards, centred alike.

Every task writes its result file atomically; the driver records it in the checkpoint manifest, so a
rerun with ``resume`` skips finished shards, and a task Ray retries after its worker was killed either
finds its file done or computes it again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.arrays import open_embeddings, parse_size, read_rows
from mlembed.cluster import peak_rss_mb
from mlembed.knn import (
    Neighbours,
    _add_columns,
    _Checkpoint,
    _search,
    _signature,
    approx_shard_size,
    best,
    block_scales,
    candidates,
    canonical,
    check_precision,
    heap_size,
    score_block,
    shard_sizes,
    shifted,
)

#: a task is retried this many times when its worker dies (killed, out of memory, node lost)
TASK_RETRIES = 5


def _exact_shard(
    src: str, tgt: str, q0: int, q1: int, k: int, ds: int, scales: tuple[float, float] | None, out: str
) -> float:
    """Forward top-k of sources ``q0:q1`` and their partial backward heap over all targets -> ``out``."""
    import faiss

    from mlembed.files import atomic_path

    if not Path(out).exists():
        src_arr, tgt_arr = open_embeddings(src), open_embeddings(tgt)
        nb = len(tgt_arr)
        kf, kb = min(k, nb), min(k, len(src_arr))
        xq = read_rows(src_arr, q0, q1)
        fwd = faiss.ResultHeap(q1 - q0, kf, keep_max=True)
        bwd = faiss.ResultHeap(nb, kb, keep_max=True)
        rows, qids = np.arange(q1 - q0, dtype=np.int64), np.arange(q0, q1, dtype=np.int64)
        for b0 in range(0, nb, ds):
            b1 = min(b0 + ds, nb)
            block = score_block(xq, read_rows(tgt_arr, b0, b1), scales)
            fwd.add_result_subset(rows, block, np.arange(b0, b1, dtype=np.int64))
            _add_columns(bwd, b0, block, qids)
        fwd.finalize()
        with atomic_path(out, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, sims=fwd.D, ids=fwd.I, bwd_D=bwd.D, bwd_I=bwd.I)
    return peak_rss_mb()


def _search_shard(
    index_file: str, queries: str, q0: int, q1: int, k: int, params: dict, shift: np.ndarray | None, out: str
) -> float:
    """Search queries ``q0:q1`` (minus ``shift``) in the saved index (memory-mapped: workers share its pages)
    -> ``out``."""
    import faiss

    from mlembed.faiss_index import set_search_params
    from mlembed.files import atomic_path

    if not Path(out).exists():
        index = faiss.read_index(index_file, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        set_search_params(index, **params)
        d, i = _search(index, shifted(read_rows(open_embeddings(queries), q0, q1), shift), k)
        with atomic_path(out, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, sims=d, ids=i)
    return peak_rss_mb()


def knn_both_ways_ray(
    src: str | os.PathLike,
    tgt: str | os.PathLike,
    workdir: str | os.PathLike,
    k: int = 4,
    memory_budget: int | str | None = None,
    index: str = "flat",
    resume: bool = False,
    shard_size: int | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
    train_size: int | None = None,
    address: str | None = None,
    show_progress: bool = False,
    stats: dict | None = None,
    precision: str = "fp32",
    centre: bool = False,
) -> tuple[Neighbours, Neighbours]:
    """:func:`mlembed.knn.knn_both_ways` with the query shards run as Ray tasks (``.npy`` paths in, same result).

    ``memory_budget`` bounds each task (and the driver's merge). ``stats``, when given, receives the tasks'
    peak RSS in MB (``worker_peak_rss_mb``) and how many ran.

    Example:
        >>> fwd, bwd = knn_both_ways_ray("src.npy", "tgt.npy", "work/knn", k=4)  # doctest: +SKIP
    """
    import faiss
    import ray
    from tqdm.auto import tqdm

    from mlembed.cluster import connect
    from mlembed.faiss_index import build_faiss_index, mean_row
    from mlembed.files import atomic_path

    src_arr, tgt_arr = open_embeddings(src), open_embeddings(tgt)
    if src_arr.shape[1] != tgt_arr.shape[1]:
        raise ValueError(f"source and target dimensions differ: {src_arr.shape[1]} != {tgt_arr.shape[1]}")
    budget = parse_size(memory_budget)
    check_precision(index, precision)
    scales = block_scales(src_arr, tgt_arr, precision) if index == "flat" else None
    kh = heap_size(k, precision) if index == "flat" else k
    qs, ds = shard_sizes(len(src_arr), len(tgt_arr), src_arr.shape[1], kh, budget)
    if index != "flat" and not shard_size:
        kc = candidates(k, max(len(src_arr), len(tgt_arr)), centre)
        qs = approx_shard_size(len(src_arr) + len(tgt_arr), src_arr.shape[1], kc, budget)
    qs = int(shard_size or qs)
    params = {"nprobe": nprobe, "ef_search": ef_search}
    extra = {"precision": precision} if index == "flat" else {**params, "train_size": train_size, "centre": centre}
    ckpt = _Checkpoint(workdir, _signature(src_arr, tgt_arr, k, index, qs, ds, extra), resume)
    assert ckpt.dir is not None
    connect(address)
    if index == "flat":
        stages = [("exact", str(src), len(src_arr), None)]
    else:
        stages = [("forward", str(src), len(src_arr), str(tgt)), ("backward", str(tgt), len(tgt_arr), str(src))]
    jobs = {}
    for stage, queries, n, db in stages:
        done = ckpt.done(stage)
        todo = [(s, q0) for s, q0 in enumerate(range(0, n, qs)) if str(s) not in done]
        if todo and db is not None:
            index_file = ckpt.dir / f"{stage}.faiss"
            if not index_file.exists():
                built = build_faiss_index(
                    db,
                    index,
                    train_size=train_size,
                    show_progress=show_progress,
                    desc=f"index ({stage})",
                    shift=mean_row(db) if centre else None,
                )
                with atomic_path(index_file, suffix=".faiss") as tmp:
                    faiss.write_index(built, str(tmp))
        shift = mean_row(queries) if todo and db is not None and centre else None
        for shard, q0 in todo:
            name = f"{stage}-{shard:05d}.npz"
            out = str(ckpt.dir / name)
            q1 = min(q0 + qs, n)
            if db is None:
                task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_exact_shard)
                ref = task.remote(str(src), str(tgt), q0, q1, kh, ds, scales, out)
            else:
                task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_search_shard)
                kc = candidates(k, len(open_embeddings(db)), centre)
                ref = task.remote(str(ckpt.dir / f"{stage}.faiss"), queries, q0, q1, kc, params, shift, out)
            jobs[ref] = (stage, shard, name)
    total = sum(-(-n // qs) for _, _, n, _ in stages)
    bar = tqdm(total=total, initial=total - len(jobs), unit="shard", desc="k-NN (ray)", disable=not show_progress)
    peaks = []
    pending = list(jobs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        peaks.append(ray.get(ready[0]))
        stage, shard, name = jobs[ready[0]]
        ckpt.commit(stage, shard, name)
        bar.update(1)
    bar.close()
    if stats is not None:
        stats.update(worker_peak_rss_mb=max(peaks, default=0.0), tasks=len(peaks), shard_size=qs)
    if index == "flat":
        fwd, bwd = _merge_exact(ckpt, len(src_arr), len(tgt_arr), kh, qs)
    else:
        fwd = _gather(ckpt, "forward", len(src_arr), candidates(k, len(tgt_arr), centre), qs)
        bwd = _gather(ckpt, "backward", len(tgt_arr), candidates(k, len(src_arr), centre), qs)
    # one-thread tasks score as one process
    return best(canonical(src_arr, tgt_arr, fwd), k), best(canonical(tgt_arr, src_arr, bwd), k)


def _gather(ckpt: _Checkpoint, stage: str, n: int, kk: int, qs: int) -> Neighbours:
    sims = np.full((n, kk), -np.inf, dtype=np.float32)
    ids = np.full((n, kk), -1, dtype=np.int64)
    for shard, name in ckpt.done(stage).items():
        q0 = int(shard) * qs
        part = ckpt.load_arrays(name)
        sims[q0 : q0 + qs], ids[q0 : q0 + qs] = part["sims"], part["ids"]
    return Neighbours(sims, ids)


def _merge_exact(ckpt: _Checkpoint, nq: int, nb: int, k: int, qs: int) -> tuple[Neighbours, Neighbours]:
    import faiss

    kf, kb = min(k, nb), min(k, nq)
    fwd_sims = np.full((nq, kf), -np.inf, dtype=np.float32)
    fwd_ids = np.full((nq, kf), -1, dtype=np.int64)
    bwd = faiss.ResultHeap(nb, kb, keep_max=True)
    for shard, name in sorted(ckpt.done("exact").items(), key=lambda item: int(item[0])):
        q0 = int(shard) * qs
        part: Any = ckpt.load_arrays(name)
        fwd_sims[q0 : q0 + qs], fwd_ids[q0 : q0 + qs] = part["sims"], part["ids"]
        bwd.add_result(np.ascontiguousarray(part["bwd_D"]), np.ascontiguousarray(part["bwd_I"]))
    bwd.finalize()
    return Neighbours(fwd_sims, fwd_ids), Neighbours(bwd.D.copy(), bwd.I.copy())
