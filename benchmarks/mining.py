"""Bitext-mining benchmark: scale (time / peak RSS vs an in-RAM reference), quality (NTREX in noise), search.

Parts (each updates its key in ``benchmarks/results/mining.json`` and rewrites ``mining.md``):

* ``scale``: clustered synthetic pairs (half of the targets are a source plus noise, cosine ~0.8;
  the rest random) at several N, d=384. Every run is a separate process measuring its own wall
  time and peak RSS (``ru_maxrss``): ``mlembed`` = :func:`mlembed.mine.mine_embeddings` on
  ``.npy`` memmaps; ``reference`` = the in-RAM recipe written below from the algorithm's
  description (whole arrays loaded, FAISS ``IndexFlatIP`` both ways, full k-NN lists, ratio margin,
  intersect). Also the sgemm rate of this machine and the exact-k-NN floor ``2 N^2 d / rate``.
* ``quality``: NTREX-128 English->deu/cmn gold pairs hidden among Tatoeba-Challenge distractors
  (English on the source side, the target language on the target side), split by NTREX document:
  the threshold is calibrated on one half and F1 measured on the other; every mode x margin.
* ``search``: p50/p99 latency and recall@10 vs exact of each index type.

Run with ``nice -n 15 python benchmarks/mining.py scale|quality|search [options]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------- reference (in-RAM recipe)


def reference_mine(
    x_path: str, y_path: str, k: int = 4, query_limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Margin mining as usually written: everything in RAM, FAISS flat index searched both ways.

    ``query_limit`` searches only the first rows of each side (to time a part of an exact run
    that would take hours); pairs are then returned for that part only.
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


# ---------------------------------------------------------------- helpers


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str]) -> dict:
    """Run this script's ``child`` part in a fresh process; return its JSON line."""
    cmd = [sys.executable, __file__, "child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child run failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def sgemm_gflops(dim: int = 384, n: int = 8192, repeat: int = 5) -> float:
    a = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    b = np.random.default_rng(1).random((n, dim), dtype=np.float32)
    a @ b.T
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b.T
    return 2 * n * n * dim * repeat / (time.perf_counter() - t) / 1e9


def synthetic(
    n: int, dim: int, cache: Path, noise: float = 0.038, spread: float = 0.06, clusters: int = 1000, seed: int = 0
) -> tuple[Path, Path, Path]:
    """``src``, ``tgt`` (.npy, unit rows) and ``gold`` (tgt row t < n/2 pairs src row gold[t]), written in chunks.

    Vectors are clustered (random centre + ``spread`` noise, cosine ~0.65 to the centre) as real
    embeddings are; a paired target is its source + ``noise`` (cosine ~0.8); other targets are new
    clustered vectors.
    """
    cache.mkdir(parents=True, exist_ok=True)
    paths = cache / f"synth2-{n}-src.npy", cache / f"synth2-{n}-tgt.npy", cache / f"synth2-{n}-gold.npy"
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def clustered(m: int) -> np.ndarray:
        return centres[rng.integers(0, clusters, m)] + spread * rng.standard_normal((m, dim), dtype=np.float32)

    src = np.lib.format.open_memmap(paths[0], "w+", np.float32, (n, dim))
    tgt = np.lib.format.open_memmap(paths[1], "w+", np.float32, (n, dim))
    step = 65536
    for a in range(0, n, step):
        b = min(a + step, n)
        v = clustered(b - a)
        src[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    gold = rng.permutation(n)[: n // 2]
    for a in range(0, n, step):
        b = min(a + step, n)
        rows = np.arange(a, b)
        v = clustered(b - a)
        paired = rows < n // 2
        v[paired] = src[gold[rows[paired]]] + noise * rng.standard_normal((int(paired.sum()), dim), dtype=np.float32)
        tgt[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    src.flush(), tgt.flush()
    del src, tgt
    np.save(paths[2], gold)
    return paths


def child(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    c0 = time.process_time()
    if args.impl == "reference":
        scores, i, j = reference_mine(args.src, args.tgt, args.k, args.query_limit)
    else:
        from mlembed.mine import mine_embeddings

        with tempfile.TemporaryDirectory(dir=args.workdir) as work:
            p = mine_embeddings(
                args.src,
                args.tgt,
                k=args.k,
                memory_budget=args.memory_budget,
                index=args.index,
                nprobe=args.nprobe,
                workdir=work,
            )
        scores, i, j = p.scores, p.src_idx, p.tgt_idx
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if args.pairs_out:
        np.savez(args.pairs_out, scores=scores, src=i, tgt=j)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "pairs": int(len(i)),
            }
        )
    )


def pair_set(path: Path) -> set[tuple[int, int]]:
    with np.load(path) as d:
        return set(zip(d["src"].tolist(), d["tgt"].tolist()))


def update_results(key: str, value: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "mining.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if key != "_":
        data[key] = value
    from mlembed.files import atomic_open

    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2)
    with atomic_open(RESULTS / "mining.md") as fh:
        fh.write(render_md(data))


# ---------------------------------------------------------------- scale


def scale(args: argparse.Namespace) -> None:
    cache = Path(args.cache_dir)
    rate = sgemm_gflops()
    old = (
        json.loads((RESULTS / "mining.json").read_text()).get("scale", {})
        if (RESULTS / "mining.json").exists()
        else {}
    )
    rows = old.get("runs", [])

    def put(res: dict) -> None:  # replace an earlier run of the same N and index
        rows[:] = [r for r in rows if (r["n"], r["index"]) != (res["n"], res["index"])] + [res]
        rows.sort(key=lambda r: (r["index"] != "flat", r["n"]))
        update_results("scale", out)

    out = {"machine": {"cpus": os.cpu_count(), "sgemm_gflops": round(rate, 1)}, "k": 4, "dim": args.dim, "runs": rows}
    for n in args.sizes:
        src, tgt, gold_path = synthetic(n, args.dim, cache)
        gold = {(int(s), t) for t, s in enumerate(np.load(gold_path))}
        res = {
            "n": n,
            "index": "flat",
            "floor_s": round(2 * n * n * args.dim / (rate * 1e9), 1),
            "load_before": round(os.getloadavg()[0], 2),
        }
        for impl in ("mlembed", "reference"):
            pairs = cache / f"pairs-{n}-{impl}-flat.npz"
            r = run_child(
                [
                    "--impl",
                    impl,
                    "--src",
                    str(src),
                    "--tgt",
                    str(tgt),
                    "--memory-budget",
                    args.memory_budget,
                    "--pairs-out",
                    str(pairs),
                    "--workdir",
                    str(cache),
                ]
            )
            found = pair_set(pairs)
            r["gold_recall"] = round(len(found & gold) / len(gold), 4)
            res[impl] = r
            print(n, impl, r, flush=True)
        res["identical_pairs"] = pair_set(cache / f"pairs-{n}-mlembed-flat.npz") == pair_set(
            cache / f"pairs-{n}-reference-flat.npz"
        )
        res["time_ratio"] = round(res["mlembed"]["wall_s"] / res["reference"]["wall_s"], 3)
        res["cpu_ratio"] = round(res["mlembed"]["cpu_s"] / res["reference"]["cpu_s"], 3)
        res["rss_ratio"] = round(res["mlembed"]["peak_rss_mb"] / res["reference"]["peak_rss_mb"], 3)
        put(res)
    for n in args.approx_sizes:
        src, tgt, gold_path = synthetic(n, args.dim, cache)
        gold = {(int(s), t) for t, s in enumerate(np.load(gold_path))}
        res = {
            "n": n,
            "index": args.approx_index,
            "nprobe": args.nprobe,
            "floor_s": round(2 * n * n * args.dim / (rate * 1e9), 1),
            "load_before": round(os.getloadavg()[0], 2),
        }
        pairs = cache / f"pairs-{n}-mlembed-{args.approx_index}.npz"
        r = run_child(
            [
                "--impl",
                "mlembed",
                "--src",
                str(src),
                "--tgt",
                str(tgt),
                "--memory-budget",
                args.approx_budget,
                "--index",
                args.approx_index,
                "--nprobe",
                str(args.nprobe),
                "--pairs-out",
                str(pairs),
                "--workdir",
                str(cache),
            ]
        )
        found = pair_set(pairs)
        r["gold_recall"] = round(len(found & gold) / len(gold), 4)
        exact = cache / f"pairs-{n}-reference-flat.npz"
        if exact.exists():
            ex = pair_set(exact)
            r["recall_vs_exact"] = round(len(found & ex) / len(ex), 4)
        res["mlembed"] = r
        print(n, "mlembed", args.approx_index, r, flush=True)
        if args.reference_limit:
            part = run_child(
                [
                    "--impl",
                    "reference",
                    "--src",
                    str(src),
                    "--tgt",
                    str(tgt),
                    "--query-limit",
                    str(args.reference_limit),
                ]
            )
            part["query_limit"] = args.reference_limit
            part["note"] = (
                f"searched only the first {args.reference_limit} queries each way (all data loaded and "
                "indexed, so peak RSS is measured); a full run does two exact products: at least 2 x floor_s"
            )
            res["reference_partial"] = part
            res["rss_ratio"] = round(r["peak_rss_mb"] / part["peak_rss_mb"], 3)
            print(n, "reference (partial)", part, flush=True)
        put(res)


# ---------------------------------------------------------------- quality

NTREX_REFS = {"deu": "newstest2019-ref.deu.txt", "cmn": "newstest2019-ref.zho-CN.txt"}  # LANGUAGES.tsv: zho-CN
TATOEBA_FILES = {"deu": "eng-deu.tsv", "cmn": "eng-cmn_Hans.tsv"}
GETTEXT_LANGS = {"deu": "de", "cmn": "zh-Hans"}


def _tsv_rows(path: Path) -> list[tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2 and parts[0].strip() and parts[1].strip():
                rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def distractor_pools(data: Path, size: int) -> tuple[list[str], dict[str, list[str]]]:
    """English and target-language distractors with no translation of each other among them.

    English comes from the even rows of Tatoeba-Challenge (and gettext) pair lists, the target
    sentences from the odd rows, minus any row whose English side is in the English pool.
    """
    from itertools import islice

    from mlembed.data import read_pairs

    sources = {}
    for lang in NTREX_REFS:
        rows = _tsv_rows(data / "tatoeba-challenge" / TATOEBA_FILES[lang])
        rows += [(p.src, p.tgt) for p in islice(read_pairs(f"gettext:system:{GETTEXT_LANGS[lang]}"), 4 * size)]
        sources[lang] = rows
    english: list[str] = []
    seen: set[str] = set()
    for lang in NTREX_REFS:
        for en, _ in sources[lang][0::2]:
            if en not in seen and len(english) < size:
                seen.add(en)
                english.append(en)
    targets = {}
    for lang, rows in sources.items():
        pool, tseen = [], set()
        for en, tgt in rows[1::2]:
            if en not in seen and tgt not in tseen:
                tseen.add(tgt)
                pool.append(tgt)
        targets[lang] = pool[:size]
    rng = np.random.default_rng(0)
    rng.shuffle(english)
    for pool in targets.values():
        rng.shuffle(pool)
    return english, targets


def cached_encode(sentences: list[str], model_name: str, cache: Path, tag: str) -> np.ndarray:
    import hashlib

    from mlembed.encoding import encode_to_npy

    key = hashlib.sha256(("\n".join(sentences) + model_name).encode()).hexdigest()[:16]
    path = cache / f"emb-{model_name.replace('/', '_')}-{tag}-{key}.npy"
    if not path.exists():
        encode_to_npy(sentences, path, model_name, count=len(sentences), normalize=True, show_progress=False)
    return np.load(path)


def quality(args: argparse.Namespace) -> None:
    from mlembed.knn import knn_both_ways
    from mlembed.mine import DEFAULT_THRESHOLDS, MARGINS, MODES, best_threshold, select_pairs

    data, cache = Path(args.data), Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    english_src = (data / "ntrex128" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    docs = (data / "ntrex128" / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    order = list(dict.fromkeys(docs))
    split_of = {doc: i % 2 for i, doc in enumerate(order)}  # alternate documents: 0 = calibration, 1 = test
    rows_by_split = [[i for i, doc in enumerate(docs) if split_of[doc] == s] for s in (0, 1)]
    english_d, target_d = distractor_pools(data, args.distractors)
    half = args.distractors // 2
    old = (
        json.loads((RESULTS / "mining.json").read_text()).get("quality", {})
        if (RESULTS / "mining.json").exists()
        else {}
    )
    runs = [r for r in old.get("runs", []) if not (r["model"] in args.model and r["lang"] in args.langs)]
    out = {
        "setup": (
            f"NTREX-128 newstest2019 English -> deu / zho-CN (cmn) gold pairs, split by document (alternate "
            f"documents: {len(rows_by_split[0])} calibration / {len(rows_by_split[1])} test pairs). Each split hides its "
            f"gold pairs among {half:,} English and {half:,} target-language distractors per language (Tatoeba-Challenge "
            f"+ gettext sentences; English and target distractors taken from disjoint rows, so no distractor "
            f"translates another): {2 * half:,} distractors per split and language, "
            f"{2 * args.distractors:,} in all per language. "
            "k=4. Threshold: F1-best on the calibration split, applied to the test split; "
            "`default` rows use the documented default threshold instead."
        ),
        "runs": runs,
    }
    for model in args.model:
        en_gold = cached_encode(english_src, model, cache, "ntrex-eng")
        en_dis = cached_encode(english_d, model, cache, "dis-eng")
        for lang in args.langs:
            ref = NTREX_REFS[lang]
            tgt_lines = (data / "ntrex128" / ref).read_text(encoding="utf-8").splitlines()
            tgt_gold = cached_encode(tgt_lines, model, cache, f"ntrex-{lang}")
            tgt_dis = cached_encode(target_d[lang], model, cache, f"dis-{lang}")
            mined = {}
            for s, rows in enumerate(rows_by_split):
                dis = slice(s * half, (s + 1) * half)
                src = np.vstack([en_gold[rows], en_dis[dis]])
                tgt = np.vstack([tgt_gold[rows], tgt_dis[dis]])
                gold = {(i, i) for i in range(len(rows))}
                fwd, bwd = knn_both_ways(src, tgt, k=4)  # exact k-NN once; every margin and mode reads the same lists
                for margin in MARGINS:
                    for mode in MODES:
                        mined[s, margin, mode] = (select_pairs(fwd, bwd, margin=margin, mode=mode), gold)
            for margin in MARGINS:
                for mode in MODES:
                    chosen = best_threshold(*mined[0, margin, mode])
                    for label, thr in (("calibrated", chosen.threshold), ("default", DEFAULT_THRESHOLDS[margin])):
                        pairs, gold = mined[1, margin, mode]
                        kept = pairs.above(thr)
                        tp = sum((int(i), int(j)) in gold for i, j in zip(kept.src_idx, kept.tgt_idx))
                        p, r = tp / max(len(kept), 1), tp / len(gold)
                        runs.append(
                            {
                                "model": model,
                                "lang": lang,
                                "margin": margin,
                                "mode": mode,
                                "threshold_from": label,
                                "threshold": round(thr, 4),
                                "precision": round(p, 4),
                                "recall": round(r, 4),
                                "f1": round(2 * p * r / max(p + r, 1e-12), 4),
                            }
                        )
            print(
                model,
                lang,
                [(r["margin"], r["mode"], r["f1"]) for r in runs if r["model"] == model and r["lang"] == lang][:8],
                flush=True,
            )
            update_results("quality", out)


# ---------------------------------------------------------------- search


def search_bench(args: argparse.Namespace) -> None:
    import faiss

    from mlembed.faiss_index import build_faiss_index, factory_string, set_search_params

    src, tgt, _ = synthetic(args.n, args.dim, Path(args.cache_dir))
    xb = np.load(src, mmap_mode="r")
    queries = np.ascontiguousarray(np.load(tgt, mmap_mode="r")[: args.queries])
    exact = None
    runs = []
    out = {"n": args.n, "dim": args.dim, "queries": args.queries, "threads": faiss.omp_get_max_threads(), "runs": runs}
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
        if kind == "flat":
            exact = ids
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, ids)])) if exact is not None else None
        runs.append(
            {
                "kind": kind,
                "factory": factory_string(kind, args.n, args.dim),
                "build_s": round(build, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 3),
                "p99_ms": round(float(np.percentile(lat, 99)), 3),
                "recall_at_10": None if recall is None else round(recall, 4),
                "nprobe": args.nprobe if "ivf" in kind else None,
                "ef_search": args.ef_search if kind == "hnsw" else None,
            }
        )
        print(runs[-1], flush=True)
        update_results("search", out)
        del index


# ---------------------------------------------------------------- rendering


def render_md(data: dict) -> str:
    lines = [
        "# Bitext mining benchmark",
        "",
        "Produced by `benchmarks/mining.py` (see its docstring for the method).",
        "",
    ]
    if "scale" in data:
        s = data["scale"]
        lines += [
            f"## Scale (synthetic pairs, d={s['dim']}, k={s['k']}, ratio margin, intersect)",
            "",
            f"Machine: {s['machine']['cpus']} CPUs; sgemm measured at the start of the latest scale run: "
            f"{s['machine']['sgemm_gflops']} GFLOP/s (each row's exact floor, 2 N^2 d flops at that rate, uses the rate "
            "measured in its own run). `load` is the 1-minute load average when the row started (about 0 to 2 = "
            "no other job; `-`: run before the column existed, on a machine with no other job). CPU seconds "
            "are user+sys of the run.",
            "",
            "`reference` rows marked `>= ... (2 x floor)` searched only a part of the queries (exact search of "
            "every query would take hours): their peak RSS is measured with all data loaded and indexed, and no "
            "time is claimed beyond the lower bound of the two exact products the recipe does.",
            "",
            "| N | index | load | mlembed wall s | mlembed CPU s | mlembed peak RSS MB | reference wall s | reference CPU s | reference peak RSS MB | time ratio | CPU ratio | RSS ratio | identical pairs | gold recall (mlembed) | exact floor s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in s["runs"]:
            m = r["mlembed"]
            ref = r.get("reference") or r.get("reference_partial") or {}
            ref_wall = ref.get("wall_s", "-") if "reference" in r else f">= {2 * r['floor_s']:,.0f} (2 x floor)"
            extra = f" (recall vs exact {m['recall_vs_exact']})" if "recall_vs_exact" in m else ""
            ref_cpu = ref.get("cpu_s", "-") if "reference" in r else "-"
            lines.append(
                f"| {r['n']:,} | {r['index']} | {r.get('load_before', '-')} | {m['wall_s']} | {m.get('cpu_s', '-')} | {m['peak_rss_mb']} | {ref_wall} | {ref_cpu} | "
                f"{ref.get('peak_rss_mb', '-')} | {r.get('time_ratio', '-')} | {r.get('cpu_ratio', '-')} | {r.get('rss_ratio', '-')} | {r.get('identical_pairs', '-')} | {m['gold_recall']}{extra} | {r['floor_s']} |"
            )
        lines.append("")
    if "quality" in data:
        q = data["quality"]
        lines += [
            "## Quality: NTREX-128 gold pairs among distractors",
            "",
            q["setup"],
            "",
            "| model | lang | margin | mode | threshold | from | precision | recall | F1 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in q["runs"]:
            lines.append(
                f"| {r['model']} | {r['lang']} | {r['margin']} | {r['mode']} | {r['threshold']} | {r['threshold_from']} | "
                f"{r['precision']} | {r['recall']} | {r['f1']} |"
            )
        lines.append("")
    if "search" in data:
        s = data["search"]
        lines += [
            f"## Search: {s['n']:,} clustered synthetic vectors (d={s['dim']}), {s['queries']} queries one at a time, "
            f"{s['threads']} FAISS threads",
            "",
            "| index | factory | build s | p50 ms | p99 ms | recall@10 vs exact |",
            "|---|---|---|---|---|---|",
        ]
        for r in s["runs"]:
            lines.append(
                f"| {r['kind']} | {r['factory']} | {r['build_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['recall_at_10']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    c = sub.add_parser("child")
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
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="*", default=[50_000, 200_000])
    s.add_argument("--approx-sizes", type=int, nargs="*", default=[1_000_000])
    s.add_argument("--approx-index", default="ivfsq")
    s.add_argument("--nprobe", type=int, default=16)
    s.add_argument("--dim", type=int, default=384)
    s.add_argument("--memory-budget", default="2G")
    s.add_argument("--approx-budget", default="1G")
    s.add_argument("--reference-limit", type=int, default=20_000)
    s.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "mlembed-bench"))
    q = sub.add_parser("quality")
    q.add_argument(
        "--model", action="append", help="repeatable; default: minilm-en and muse (add a distilled student folder)"
    )
    q.add_argument(
        "--distractors", type=int, default=10_000, help="distractor sentences per side and language [%(default)s]"
    )
    q.add_argument("--langs", nargs="*", default=list(NTREX_REFS), choices=list(NTREX_REFS))
    q.add_argument("--data", default=str(DATA))
    q.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "mlembed-bench"))
    b = sub.add_parser("search")
    b.add_argument("--n", type=int, default=200_000)
    b.add_argument("--dim", type=int, default=384)
    b.add_argument("--queries", type=int, default=500)
    b.add_argument("--kinds", nargs="*", default=["flat", "ivf", "ivfsq", "ivfpq", "hnsw"])
    b.add_argument("--nprobe", type=int, default=16)
    b.add_argument("--ef-search", type=int, default=64)
    b.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "mlembed-bench"))
    sub.add_parser("render", help="rewrite mining.md from mining.json")
    args = ap.parse_args()
    if args.part == "render":
        update_results("_", {})
        return
    if args.part == "quality" and not args.model:
        args.model = ["minilm-en", "muse"]
    {"child": child, "scale": scale, "quality": quality, "search": search_bench}[args.part](args)


if __name__ == "__main__":
    main()
