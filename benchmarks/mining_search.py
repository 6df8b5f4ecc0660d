"""Search latency and recall of each index kind: p50/p99 of one query at a time, recall@10 against ``flat``.

Clustered synthetic vectors (:func:`_common.synthetic`, 1,000 tight clusters: the hard case for graph
and product-quantised indexes), indexes built by :func:`mlembed.faiss_index.build_faiss_index` as
``mlembed index build`` builds them. Writes ``benchmarks/results/mining_search.{json,md}``.

Run with ``nice -n 15 python benchmarks/mining_search.py [--n 1000000]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import CACHE, machine, synthetic, write_results


def render(data: dict) -> str:
    lines = [
        f"# Search: {data['n']:,} clustered synthetic vectors (d={data['dim']}), {data['queries']} queries one at a "
        f"time, {data['threads']} FAISS threads",
        "",
        "Produced by `benchmarks/mining_search.py`.",
        "",
        "| index | factory | build s | p50 ms | p99 ms | recall@10 vs exact |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {r['kind']} | {r['factory']} | {r['build_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['recall_at_10']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--kinds", nargs="*", default=["flat", "ivf", "ivfsq", "ivfpq", "hnsw"])
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--ef-search", type=int, default=64)
    ap.add_argument("--cache-dir", type=Path, default=CACHE)
    args = ap.parse_args()
    if args.kinds[0] != "flat":
        ap.error("--kinds must start with flat (the exact answers recall is measured against)")
    import faiss

    from mlembed.faiss_index import build_faiss_index, factory_string, set_search_params

    src, tgt, _ = synthetic(args.n, args.dim, args.cache_dir)
    xb = np.load(src, mmap_mode="r")
    queries = np.ascontiguousarray(np.load(tgt, mmap_mode="r")[: args.queries])
    runs: list[dict] = []
    data = {"machine": machine(), "n": args.n, "dim": args.dim, "queries": args.queries}
    data.update(threads=faiss.omp_get_max_threads(), runs=runs)
    exact = None
    for kind in args.kinds:
        t0 = time.perf_counter()
        index = build_faiss_index(xb, kind)
        build = time.perf_counter() - t0
        set_search_params(index, nprobe=args.nprobe, ef_search=args.ef_search)
        lat, ids = [], []
        for q in queries:
            t = time.perf_counter()
            _, i = index.search(q[None], 10)
            lat.append((time.perf_counter() - t) * 1000)
            ids.append(i[0])
        ids = np.array(ids)
        exact = ids if exact is None else exact
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, ids)]))
        runs.append(
            {
                "kind": kind,
                "factory": factory_string(kind, args.n, args.dim),
                "build_s": round(build, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 3),
                "p99_ms": round(float(np.percentile(lat, 99)), 3),
                "recall_at_10": round(recall, 4),
                "nprobe": args.nprobe if "ivf" in kind else None,
                "ef_search": args.ef_search if kind == "hnsw" else None,
            }
        )
        print(runs[-1], flush=True)
        write_results("mining_search", data, render(data))
        del index


if __name__ == "__main__":
    main()
