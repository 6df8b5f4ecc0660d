"""Sentence alignment (``mlembed align``) on Text+Berg and on a 10,000-sentence document pair.

**Text+Berg** (``../shared/data/bleualign``, German-French, the Bleualign test set that Vecalign and Bertalign
report on). The aligner's settings were chosen on ``dev`` only: the grid below runs there with the main
student, and its best row is what ``mlembed.aligner``'s defaults hold. ``test0``..``test6`` are reported
together: strict and lax precision, recall and F1 as Vecalign's scorer defines them
(``mlembed.evaluation.alignment``, counts pooled over the seven). Each model runs in its own process. The
process encodes both documents of each pair, aligns them with the defaults and reports seconds per 1,000
sentences (encoding included, model loading not) and its peak RSS. The published Vecalign (LASER) and Bertalign
(LaBSE) rows are quoted from their papers, not run here.

**10,000 sentences.** A document pair built from tatoeba-challenge eng-deu pairs (seeded): 10,000 pairs,
then seeded edits with known gold. 4 % of German lines are merged with the next (2-1 from the English side's
view is 1-2), 4 % of English lines are merged with the next, 2 % of German lines and 2 % of English lines are
dropped (omissions). ``mlembed align`` runs on it as users run it, in a subprocess; its wall time includes
Python's start, model loading and encoding, and its peak RSS is the child's.

Writes ``benchmarks/results/align_quality.{json,md}``. Run with ``python benchmarks/align_quality.py --student
PATH`` (the main job's student folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, require_shared, write_results

TESTS = [f"test{i}" for i in range(7)]
PUBLISHED = [
    {"aligner": "Vecalign (LASER)", "f1_strict": 0.902, "f1_lax": 0.986, "source": "Thompson & Koehn 2019, Table 2"},
    {"aligner": "Bertalign (LaBSE)", "f1_strict": 0.936, "f1_lax": 0.989, "source": "Liu & Zhu 2022, Table 3"},
]
GRID = {
    "weights": ["tokens", "uniform"],
    "max_bead": [4, 5, 6],
    "skip_quantile": [0.1, 0.2],
    "length_weight": [0.0, 0.5, 1.0],
}


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def textberg(root: Path, names: list[str]) -> list[tuple[list[str], list[str], list]]:
    from mlembed.evaluation.alignment import read_beads

    return [(lines(root / f"{n}.de"), lines(root / f"{n}.fr"), read_beads(root / f"{n}.defr")) for n in names]


def one_model(model_name: str, root: Path, grid: bool) -> dict:
    """Run in a child process: encode, align and score one model on Text+Berg (and the dev grid if asked)."""
    from mlembed.aligner import align, bead_types, encode_overlaps
    from mlembed.evaluation.alignment import alignment_scores
    from mlembed.models import load_model

    model = load_model(model_name)
    out: dict = {"model": model_name}
    if grid:
        dev = textberg(root, ["dev"])
        longest = max(max(a, b) for a, b in bead_types(max(GRID["max_bead"])))
        vectors = {
            w: [
                (encode_overlaps(s, model, longest, weights=w), encode_overlaps(t, model, longest, weights=w))
                for s, t, _ in dev
            ]
            for w in GRID["weights"]
        }
        rows = []
        for w, mb, q, lw in itertools.product(*GRID.values()):
            test = [
                [(b.src, b.tgt) for b in align(s, t, model, max_bead=mb, skip_quantile=q, length_weight=lw, vectors=v)]
                for (s, t, _), v in zip(dev, vectors[w])
            ]
            score = alignment_scores([g for _, _, g in dev], test)
            rows.append({"weights": w, "max_bead": mb, "skip_quantile": q, "length_weight": lw, **_round(score)})
            print("dev", rows[-1], flush=True)
        out["dev_grid"] = rows
    docs = textberg(root, TESTS)
    t0 = time.perf_counter()
    test = [[(b.src, b.tgt) for b in align(s, t, model)] for s, t, _ in docs]
    seconds = time.perf_counter() - t0
    sentences = sum(len(s) + len(t) for s, t, _ in docs)
    out["test"] = _round(alignment_scores([g for _, _, g in docs], test))
    out["sentences"] = sentences
    out["seconds_per_1000_sentences"] = round(seconds / sentences * 1000, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["beads_by_type"] = _types(test)
    out["gold_beads_by_type"] = _types([g for _, _, g in docs])
    return out


def _round(score: dict) -> dict:
    return {k: round(float(v), 4) for k, v in score.items()}


def _types(docs: list[list]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for doc in docs:
        for src, tgt in doc:
            key = f"{len(src)}-{len(tgt)}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def build_long_pair(shared: Path, n: int, seed: int, folder: Path) -> tuple[Path, Path, list]:
    """English and German documents of ``n`` tatoeba-challenge pairs with seeded merges and omissions, and gold."""
    rows = []
    seen = set()
    with open(shared / "tatoeba-challenge" / "eng-deu.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2 and all(p.strip() for p in parts) and parts[0] not in seen:
                seen.add(parts[0])
                rows.append((parts[0].strip(), parts[1].strip()))
    if len(rows) < n:
        raise SystemExit(f"eng-deu has {len(rows):,} distinct pairs, fewer than the {n:,} asked")
    rng = random.Random(seed)
    rng.shuffle(rows)
    rows = rows[:n]
    src: list[str] = []
    tgt: list[str] = []
    gold: list = []
    i = 0
    while i < n:
        r = rng.random()
        if r < 0.02:  # English sentence with no German
            gold.append(((len(src),), ()))
            src.append(rows[i][0])
            i += 1
        elif r < 0.04:  # German sentence with no English
            gold.append(((), (len(tgt),)))
            tgt.append(rows[i][1])
            i += 1
        elif r < 0.08 and i + 1 < n:  # two German sentences on one line: 2-1
            gold.append(((len(src), len(src) + 1), (len(tgt),)))
            src += [rows[i][0], rows[i + 1][0]]
            tgt.append(rows[i][1] + " " + rows[i + 1][1])
            i += 2
        elif r < 0.12 and i + 1 < n:  # two English sentences on one line: 1-2
            gold.append(((len(src),), (len(tgt), len(tgt) + 1)))
            src.append(rows[i][0] + " " + rows[i + 1][0])
            tgt += [rows[i][1], rows[i + 1][1]]
            i += 2
        else:
            gold.append(((len(src),), (len(tgt),)))
            src.append(rows[i][0])
            tgt.append(rows[i][1])
            i += 1
    (folder / "en.txt").write_text("\n".join(src) + "\n", encoding="utf-8")
    (folder / "de.txt").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return folder / "en.txt", folder / "de.txt", gold


def long_run(shared: Path, model: str, n: int, seed: int) -> dict:
    from mlembed.evaluation.alignment import alignment_scores, read_beads

    folder = Path(tempfile.mkdtemp(prefix="align-long-"))
    en, de, gold = build_long_pair(shared, n, seed, folder)
    out = folder / "beads.txt"
    cmd = [sys.executable, "-m", "mlembed", "-q", "align", "--src", str(en), "--tgt", str(de), "-o", str(out)]
    cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource use: its peak RSS
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"mlembed align failed ({proc.returncode})")
    score = alignment_scores([gold], [read_beads(out)])
    return {
        "model": model,
        "pairs": n,
        "src_sentences": len(lines(en)),
        "tgt_sentences": len(lines(de)),
        "gold_beads_by_type": _types([gold]),
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        **_round(score),
    }


def render(data: dict) -> str:
    m = data["machine"]
    lines_ = [
        "# Sentence alignment: `mlembed align`",
        "",
        "Produced by `benchmarks/align_quality.py` (its docstring gives the method), one run. "
        f"{m['cpu_count']} CPUs ({m['cpu_model']}; flags {', '.join(m['cpu_flags'])}), native bf16: {m['native_bf16']}.",
        "",
        "## Text+Berg test0-test6 (German-French), the aligner's defaults",
        "",
        "| aligner | strict P | strict R | **strict F1** | lax P | lax R | **lax F1** | s / 1,000 sentences | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["models"]:
        t = r["test"]
        lines_.append(
            f"| mlembed align, `{r['label']}` | {t['precision_strict']:.3f} | {t['recall_strict']:.3f} | "
            f"**{t['f1_strict']:.3f}** | {t['precision_lax']:.3f} | {t['recall_lax']:.3f} | **{t['f1_lax']:.3f}** | "
            f"{r['seconds_per_1000_sentences']} | {r['peak_rss_mb']} |"
        )
    for p in PUBLISHED:
        lines_.append(
            f"| {p['aligner']}, published ({p['source']}) | | | {p['f1_strict']:.3f} | | | {p['f1_lax']:.3f} | | |"
        )
    lines_ += [
        "",
        "Gold beads by type (test): "
        + ", ".join(f"{k} {v}" for k, v in data["models"][0]["gold_beads_by_type"].items()),
    ]
    lines_ += [
        "",
        "## Settings chosen on dev (the main student)",
        "",
        "| run weights | max bead | skip quantile | length weight | strict F1 | lax F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in data["dev_grid"]:
        lines_.append(
            f"| {r['weights']} | {r['max_bead']} | {r['skip_quantile']} | {r['length_weight']} | "
            f"{r['f1_strict']:.4f} | {r['f1_lax']:.4f} |"
        )
    lines_ += ["", f"Defaults: {data['defaults']}."]
    lr = data["long"]
    lines_ += [
        "",
        f"## {lr['pairs']:,} tatoeba-challenge eng-deu pairs as one document pair",
        "",
        f"{lr['src_sentences']:,} English and {lr['tgt_sentences']:,} German lines, gold "
        + ", ".join(f"{k} {v}" for k, v in lr["gold_beads_by_type"].items())
        + f". `mlembed align --model {lr['model']}` in a subprocess.",
        "",
        "| strict F1 | lax F1 | wall seconds (start, load, encode, align) | peak RSS MB |",
        "|---:|---:|---:|---:|",
        f"| {lr['f1_strict']:.3f} | {lr['f1_lax']:.3f} | {lr['wall_seconds']} | {lr['peak_rss_mb']} |",
    ]
    return "\n".join(lines_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", required=True, help="the main job's student folder")
    ap.add_argument("--models", nargs="*", default=["e5-small", "minilm-en", "muse"], help="models beside it")
    ap.add_argument("--long-pairs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--grid", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shared = require_shared()
    if args.one:
        print("RESULT " + json.dumps(one_model(args.one, shared / "bleualign", args.grid)), flush=True)
        return
    from mlembed.aligner import BAND, LENGTH_WEIGHT, MAX_BEAD, SKIP_QUANTILE, WEIGHTS

    data = {
        "machine": machine(),
        "defaults": {
            "weights": WEIGHTS,
            "max_bead": MAX_BEAD,
            "skip_quantile": SKIP_QUANTILE,
            "length_weight": LENGTH_WEIGHT,
            "band": BAND,
        },
        "published": PUBLISHED,
    }
    data["long"] = long_run(shared, args.student, args.long_pairs, args.seed)
    print("long", data["long"], flush=True)
    data["models"] = []
    for i, name in enumerate([args.student, *args.models]):
        cmd = [sys.executable, __file__, "--student", args.student, "--one", name] + (["--grid"] if i == 0 else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        result["label"] = "main student" if i == 0 else name
        if i == 0:
            data["dev_grid"] = result.pop("dev_grid")
        data["models"].append(result)
        print(result["label"], result["test"], flush=True)
    write_results("align_quality", data, render(data))


if __name__ == "__main__":
    main()
