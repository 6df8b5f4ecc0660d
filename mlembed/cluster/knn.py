"""``mlembed mine --ray``: the k-NN of both directions as Ray tasks, one per query shard, merged by the driver.

The plan of :func:`mlembed.knn.plan_shards` executed by tasks: the shards, the shard functions and the checkpoint
of :func:`mlembed.knn.knn_both_ways`, so the pairs are the same:

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

import numpy as np

from mlembed.arrays import open_embeddings
from mlembed.cluster import peak_rss_mb
from mlembed.knn import (
    Checkpoint,
    MiningOptions,
    Neighbours,
    ShardPlan,
    best,
    build_index,
    canonical,
    exact_shard,
    plan_shards,
    restore_backward,
    search_shard,
)

#: a task is retried this many times when its worker dies (killed, out of memory, node lost)
TASK_RETRIES = 5


def _exact_shard(src: str, tgt: str, q0: int, q1: int, plan: ShardPlan, out: str) -> float:
    """Forward top-k of sources ``q0:q1`` and their partial backward heap over all targets -> ``out``."""
    import faiss

    from mlembed.files import atomic_path

    if not Path(out).exists():
        src_arr, tgt_arr = open_embeddings(src), open_embeddings(tgt)
        bwd = faiss.ResultHeap(len(tgt_arr), plan.widths[1], keep_max=True)
        fwd = exact_shard(src_arr, tgt_arr, q0, q1, plan, bwd)
        with atomic_path(out, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, sims=fwd.sims, ids=fwd.ids, bwd_D=bwd.D, bwd_I=bwd.I)
    return peak_rss_mb()


def _search_shard(
    index_file: str,
    queries: str,
    q0: int,
    q1: int,
    width: int,
    options: MiningOptions,
    shift: np.ndarray | None,
    out: str,
) -> float:
    """Search queries ``q0:q1`` (minus ``shift``) in the saved index (memory-mapped: workers share its pages)
    -> ``out``."""
    import faiss

    from mlembed.faiss_index import set_search_params
    from mlembed.files import atomic_path

    if not Path(out).exists():
        index = faiss.read_index(index_file, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        set_search_params(index, nprobe=options.nprobe, ef_search=options.ef_search)
        d, i = search_shard(index, open_embeddings(queries), q0, q1, width, shift)
        with atomic_path(out, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, sims=d, ids=i)
    return peak_rss_mb()


def knn_both_ways_ray(
    src: str | os.PathLike,
    tgt: str | os.PathLike,
    options: MiningOptions,
    show_progress: bool = False,
    stats: dict | None = None,
) -> tuple[Neighbours, Neighbours]:
    """:func:`mlembed.knn.knn_both_ways` with the query shards run as Ray tasks (``.npy`` paths in, same result).

    ``options`` as there, with a ``workdir`` the workers can read (the tasks' files and the manifest) and
    ``ray`` the cluster's address (a string; else ``$RAY_ADDRESS`` or a new local cluster).
    ``memory_budget`` bounds each task (and the driver's merge). ``stats``, when given, receives the tasks'
    peak RSS in MB (``worker_peak_rss_mb``) and how many ran.

    Example:
        >>> options = MiningOptions(k=4, workdir="work/knn")
        >>> fwd, bwd = knn_both_ways_ray("src.npy", "tgt.npy", options)  # doctest: +SKIP
    """
    import ray
    from tqdm.auto import tqdm

    from mlembed.cluster import connect
    from mlembed.faiss_index import mean_row

    if options.workdir is None:
        raise ValueError("the k-NN on Ray needs a workdir that its workers can read")
    paths = {"src": str(src), "tgt": str(tgt)}
    arrays = {side: open_embeddings(path) for side, path in paths.items()}
    plan = plan_shards(arrays["src"], arrays["tgt"], options)
    ckpt = Checkpoint(options.workdir, plan.signature, options.resume)
    assert ckpt.dir is not None
    connect(options.ray if isinstance(options.ray, str) else None)
    exact_task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_exact_shard)
    search_task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_search_shard)
    shared_plan = ray.put(plan)  # once in the object store, not pickled into every task
    jobs = {}
    for stage, width in zip(plan.stages, plan.widths):
        done = ckpt.done(stage.name)
        todo = [(s, span) for s, span in enumerate(stage.shards) if str(s) not in done]
        if not todo:
            continue
        if plan.index != "flat":
            db = arrays["tgt" if stage.queries == "src" else "src"]
            index_file = ckpt.dir / f"{stage.name}.faiss"
            if not index_file.exists():
                build_index(db, stage.name, options, ckpt, show_progress)
            shift = mean_row(arrays[stage.queries]) if options.centre else None
        for shard, (q0, q1) in todo:
            name = f"{stage.name}-{shard:05d}.npz"
            out = str(ckpt.dir / name)
            if plan.index == "flat":
                ref = exact_task.remote(paths["src"], paths["tgt"], q0, q1, shared_plan, out)
            else:
                ref = search_task.remote(str(index_file), paths[stage.queries], q0, q1, width, options, shift, out)
            jobs[ref] = (stage.name, shard, name)
    total = sum(len(stage.shards) for stage in plan.stages)
    bar = tqdm(total=total, initial=total - len(jobs), unit="shard", desc="k-NN (ray)", disable=not show_progress)
    peaks = []
    pending = list(jobs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        peaks.append(ray.get(ready[0]))
        stage_name, shard, name = jobs[ready[0]]
        ckpt.commit(stage_name, shard, name)
        bar.update(1)
    bar.close()
    if stats is not None:
        stats.update(worker_peak_rss_mb=max(peaks, default=0.0), tasks=len(peaks), shard_size=plan.query_shard)
    if plan.index == "flat":
        fwd, bwd = _merge_exact(ckpt, plan, len(arrays["tgt"]))
    else:
        forward, backward = plan.stages
        fwd, bwd = ckpt.gather(forward, plan.widths[0]), ckpt.gather(backward, plan.widths[1])
    # one-thread tasks score as one process
    src_arr, tgt_arr = arrays["src"], arrays["tgt"]
    return best(canonical(src_arr, tgt_arr, fwd), plan.k), best(canonical(tgt_arr, src_arr, bwd), plan.k)


def _merge_exact(ckpt: Checkpoint, plan: ShardPlan, n_tgt: int) -> tuple[Neighbours, Neighbours]:
    """The finished shards' forward neighbours, and the merge of their backward heaps (the top-k of the union is
    the top-k of all; shards a single-process run finished come in its running heap: :func:`restore_backward`)."""
    (stage,) = plan.stages
    fwd = ckpt.gather(stage, plan.widths[0])
    bwd = restore_backward(ckpt, stage, n_tgt, plan.widths[1])
    bwd.finalize()
    return fwd, Neighbours(bwd.D.copy(), bwd.I.copy())
