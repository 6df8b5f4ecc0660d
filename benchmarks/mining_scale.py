"""Mining at scale: wall time, CPU time and peak RSS of ``mlembed`` mining against an in-RAM reference.

Clustered synthetic pairs (half of the targets are a source plus noise, cosine ~0.8; the rest
random) at several N, d=384, k=4, ratio margin, intersect. Every run is a separate process measuring
its own wall time and peak RSS: ``mlembed`` = :func:`mlembed.mine.mine_embeddings` on ``.npy``
memmaps; ``reference`` = the in-RAM recipe written below from the algorithm's description (whole
arrays loaded, FAISS ``IndexFlatIP`` both ways, full k-NN lists, ratio margin, intersect). Also the
sgemm rate of this machine and the exact-k-NN floor ``2 N^2 d / rate``.

Approximate rows (``--approx-sizes``) run mlembed with an IVF index and time only a part of the
exact reference (``--reference-limit`` queries each way), which still loads and indexes everything,
so its peak RSS is measured.

Writes ``benchmarks/results/mining_scale.{json,md}`` (a row replaces an earlier one of the same N and
index). Run with ``nice -n 15 python benchmarks/mining_scale.py [--sizes 50000 200000] [--approx-sizes ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import CACHE, load_results, machine, peak_rss_mb, sgemm_gflops, synthetic, write_results


def reference_mine(
    x_path: str, y_path: str, k: int = 4, query_limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Margin mining as usually written: everything in RAM, FAISS flat index searched both ways.

    ``query_limit`` searches only the first rows of each side (to time a part of an exact run
    that would take hours); no pairs are returned then.
    """
    import faiss

    x, y = np.load(x_path), np.load(y_path)
    qx, qy = (x, y) if query_limit is None else (x[:query_limit], y[:query_limit])
    index_y = faiss.IndexFlatIP(y.shape[1])
    index_y.add(y)
    x2y_sim, x2y_ind = index_y.search(qx, k)
    index_x = faiss.IndexFlatIP(x.shape[1])
    index_x.add(x)
    y2x_sim, y2x_ind = index_x.search(qy, k)
    if query_limit is not None:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd = x2y_sim / ((x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)
    bwd = y2x_sim / ((y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)
    fwd_best = x2y_ind[np.arange(len(x)), fwd.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(len(y)), bwd.argmax(axis=1)]
    src = np.nonzero(bwd_best[fwd_best] == np.arange(len(x)))[0]
    return fwd.max(axis=1)[src].astype(np.float32), src.astype(np.int64), fwd_best[src].astype(np.int64)


def child(args: argparse.Namespace) -> None:
    """One measured run in this (fresh) process; prints one JSON line."""
    t0, c0 = time.perf_counter(), time.process_time()
    if args.impl == "reference":
        scores, i, j = reference_mine(args.src, args.tgt, args.k, args.query_limit)
    else:
        from mlembed.mine import MiningOptions, mine_embeddings

        with tempfile.TemporaryDirectory(dir=args.workdir) as work:
            p = mine_embeddings(
                args.src,
                args.tgt,
                MiningOptions(
                    k=args.k, memory_budget=args.memory_budget, index=args.index, nprobe=args.nprobe, workdir=work
                ),
            )
        scores, i, j = p.scores, p.src_idx, p.tgt_idx
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.pairs_out:
        np.savez(args.pairs_out, scores=scores, src=i, tgt=j)
    out = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak_rss_mb(), 1), "pairs": len(i)}
    print(json.dumps(out))


def run_child(**options: object) -> dict:
    """Run :func:`child` in a fresh process (its own peak RSS); return its JSON line."""
    cmd = [sys.executable, __file__, "child"]
    for key, value in options.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child run failed ({' '.join(cmd[2:])}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pair_set(path: Path) -> set[tuple[int, int]]:
    with np.load(path) as d:
        return set(zip(d["src"].tolist(), d["tgt"].tolist()))


def gold_recall(found: set[tuple[int, int]], gold_path: Path) -> float:
    gold = {(int(s), t) for t, s in enumerate(np.load(gold_path))}
    return round(len(found & gold) / len(gold), 4)


def exact_row(n: int, args: argparse.Namespace, rate: float) -> dict:
    src, tgt, gold_path = synthetic(n, args.dim, args.cache_dir)
    row = {"n": n, "index": "flat", "floor_s": round(2 * n * n * args.dim / (rate * 1e9), 1)}
    row["load_before"] = round(os.getloadavg()[0], 2)
    for impl in ("mlembed", "reference"):
        pairs = args.cache_dir / f"pairs-{n}-{impl}-flat.npz"
        r = run_child(
            impl=impl, src=src, tgt=tgt, memory_budget=args.memory_budget, pairs_out=pairs, workdir=args.cache_dir
        )
        r["gold_recall"] = gold_recall(pair_set(pairs), gold_path)
        row[impl] = r
        print(n, impl, r, flush=True)
    row["identical_pairs"] = pair_set(args.cache_dir / f"pairs-{n}-mlembed-flat.npz") == pair_set(
        args.cache_dir / f"pairs-{n}-reference-flat.npz"
    )
    for what, key in (("time_ratio", "wall_s"), ("cpu_ratio", "cpu_s"), ("rss_ratio", "peak_rss_mb")):
        row[what] = round(row["mlembed"][key] / row["reference"][key], 3)
    return row


def approx_row(n: int, args: argparse.Namespace, rate: float) -> dict:
    src, tgt, gold_path = synthetic(n, args.dim, args.cache_dir)
    row = {"n": n, "index": args.approx_index, "nprobe": args.nprobe}
    row["floor_s"] = round(2 * n * n * args.dim / (rate * 1e9), 1)
    row["load_before"] = round(os.getloadavg()[0], 2)
    pairs = args.cache_dir / f"pairs-{n}-mlembed-{args.approx_index}.npz"
    r = run_child(
        impl="mlembed",
        src=src,
        tgt=tgt,
        memory_budget=args.approx_budget,
        index=args.approx_index,
        nprobe=args.nprobe,
        pairs_out=pairs,
        workdir=args.cache_dir,
    )
    found = pair_set(pairs)
    r["gold_recall"] = gold_recall(found, gold_path)
    exact = args.cache_dir / f"pairs-{n}-reference-flat.npz"
    if exact.exists():
        ex = pair_set(exact)
        r["recall_vs_exact"] = round(len(found & ex) / len(ex), 4)
    row["mlembed"] = r
    print(n, "mlembed", args.approx_index, r, flush=True)
    if args.reference_limit:
        part = run_child(impl="reference", src=src, tgt=tgt, query_limit=args.reference_limit)
        part["query_limit"] = args.reference_limit
        row["reference_partial"] = part
        row["rss_ratio"] = round(r["peak_rss_mb"] / part["peak_rss_mb"], 3)
        print(n, "reference (partial)", part, flush=True)
    return row


def render(data: dict) -> str:
    lines = [
        f"# Mining at scale (synthetic pairs, d={data['dim']}, k={data['k']}, ratio margin, intersect)",
        "",
        "Produced by `benchmarks/mining_scale.py` (its docstring gives the method). `load` is the 1-minute load "
        "average when the row started (about 0 to 2 = no other job on 2 cores). CPU seconds are user+sys. Each row's "
        "exact floor is 2 N^2 d flops at the sgemm rate measured in its own run. `reference` rows marked "
        "`>= ... (2 x floor)` searched only a part of the queries (exact search of every query would take hours): "
        "their peak RSS is measured with all data loaded and indexed, and no time is claimed beyond the lower bound "
        "of the two exact products the recipe does. `run` says which script measured the row.",
        "",
        "| N | index | run | load | mlembed wall s | mlembed CPU s | mlembed peak RSS MB | reference wall s | "
        "reference CPU s | reference peak RSS MB | time ratio | CPU ratio | RSS ratio | identical pairs | "
        "gold recall (mlembed) | exact floor s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        m = r["mlembed"]
        ref = r.get("reference") or r.get("reference_partial") or {}
        ref_wall = ref.get("wall_s", "-") if "reference" in r else f">= {2 * r['floor_s']:,.0f} (2 x floor)"
        ref_cpu = ref.get("cpu_s", "-") if "reference" in r else "-"
        extra = f" (recall vs exact {m['recall_vs_exact']})" if "recall_vs_exact" in m else ""
        lines.append(
            f"| {r['n']:,} | {r['index']} | {r.get('run', '-')} | {r.get('load_before', '-')} | {m['wall_s']} | "
            f"{m.get('cpu_s', '-')} | {m['peak_rss_mb']} | {ref_wall} | {ref_cpu} | {ref.get('peak_rss_mb', '-')} | "
            f"{r.get('time_ratio', '-')} | {r.get('cpu_ratio', '-')} | {r.get('rss_ratio', '-')} | "
            f"{r.get('identical_pairs', '-')} | {m['gold_recall']}{extra} | {r['floor_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part")
    c = sub.add_parser("child", help="(internal) one measured run")
    c.add_argument("--impl", choices=["mlembed", "reference"], required=True)
    c.add_argument("--src", required=True)
    c.add_argument("--tgt", required=True)
    c.add_argument("--k", type=int, default=4)
    c.add_argument("--memory-budget", default="1G")
    c.add_argument("--index", default="flat")
    c.add_argument("--nprobe", type=int, default=None)
    c.add_argument("--query-limit", type=int, default=None)
    c.add_argument("--pairs-out", default=None)
    c.add_argument("--workdir", default=None)
    ap.add_argument("--sizes", type=int, nargs="*", default=[50_000, 200_000], help="exact rows [%(default)s]")
    ap.add_argument("--approx-sizes", type=int, nargs="*", default=[1_000_000], help="IVF rows [%(default)s]")
    ap.add_argument("--approx-index", default="ivfsq")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--memory-budget", default="2G", help="mlembed's budget on exact rows [%(default)s]")
    ap.add_argument("--approx-budget", default="1G", help="mlembed's budget on IVF rows [%(default)s]")
    ap.add_argument(
        "--reference-limit", type=int, default=20_000, help="queries each way the IVF rows' reference searches"
    )
    ap.add_argument("--cache-dir", type=Path, default=CACHE)
    args = ap.parse_args()
    if args.part == "child":
        child(args)
        return
    rate = sgemm_gflops()
    old = load_results("mining_scale")
    runs = old.get("runs", [])
    data = {"machine": {**machine(), "sgemm_gflops": round(rate, 1)}, "k": 4, "dim": args.dim, "runs": runs}
    jobs = [(n, exact_row) for n in args.sizes] + [(n, approx_row) for n in args.approx_sizes]
    for n, measure in jobs:
        row = {**measure(n, args, rate), "run": "mining_scale.py"}
        runs[:] = [r for r in runs if (r["n"], r["index"]) != (row["n"], row["index"])] + [row]
        runs.sort(key=lambda r: (r["index"] != "flat", r["n"]))
        write_results("mining_scale", data, render(data))


if __name__ == "__main__":
    main()
