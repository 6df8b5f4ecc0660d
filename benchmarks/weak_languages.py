"""Weak languages lifted: distillation on the languages where the mapped start is poor, the others kept.

Every tatoeba-challenge language outside the 12 Tatoeba test languages with at least ``--min-pairs`` pairs is
split by a seeded shuffle into a held-out part (``--heldout`` pairs) and a training part (at most
``--train-cap`` pairs). The start is multilingual-e5-small with the centred Procrustes rotation fitted on
mlembed's packaged English sentences only (so it does not depend on any language's pairs). Languages where
the start's translation matching on their held-out part (mean of both directions, %) is below
``--weak-below`` are the *weak* languages. The student is then distilled from that start for
``--budget-minutes`` on the weak languages' training parts plus as many pairs of the other languages
(``--others-per-lang`` each), and every held-out part is scored again: the weak mean must rise, no other
language may fall.

    python benchmarks/weak_languages.py --budget-minutes 8

Writes ``benchmarks/results/NAME.{json,md}`` (``--results``, default ``weak_languages``); finished stages are
reused from ``--work``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results
from _distill_eval import LANGS as VISIBLE


def split(shared: Path, work: Path, heldout: int, min_pairs: int, train_cap: int) -> dict[str, int]:
    """Held-out and training TSVs per language (``work/heldout``, ``work/train``); pair counts of training."""
    counts = {}
    for path in sorted((shared / "tatoeba-challenge").glob("eng-*.tsv")):
        code = path.stem.split("-", 1)[1]
        if code.split("_")[0] in VISIBLE:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        header, rows = lines[0], [r for r in lines[1:] if r.count("\t") == 1]
        if len(rows) < min_pairs:
            continue
        random.Random(code).shuffle(rows)
        for part, chosen in (("heldout", rows[:heldout]), ("train", rows[heldout : heldout + train_cap])):
            (work / part).mkdir(parents=True, exist_ok=True)
            (work / part / path.name).write_text("\n".join([header, *chosen]) + "\n", encoding="utf-8")
        counts[code] = min(train_cap, len(rows) - heldout)
    return counts


def build_start(folder: Path) -> str:
    """multilingual-e5-small + the centred rotation fitted on the packaged English sentences alone."""
    if (folder / "modules.json").exists():
        return str(folder)
    from mlembed.data.english import english_sentences
    from mlembed.distill.head import add_linear_map, fit_rotation
    from mlembed.encoding import encode
    from mlembed.models import load_model

    english = english_sentences()  # (the 4,500 fitting sentences)
    student = load_model("e5-small")
    weight, bias = fit_rotation(encode(english, student), encode(english, "minilm-en"))
    add_linear_map(student, weight, bias)
    student.save(str(folder))
    return str(folder)


def score(model: str, work: Path, codes: list[str]) -> dict[str, float]:
    """Translation matching on each language's held-out pairs (mean of both directions, %)."""
    from mlembed.encoding import encode
    from mlembed.evaluation.retrieval import retrieval_accuracy
    from mlembed.models import load_model

    loaded = load_model(model)
    out = {}
    for code in codes:
        rows = [r.split("\t") for r in (work / "heldout" / f"eng-{code}.tsv").read_text().splitlines()[1:]]
        english, other = encode([r[0] for r in rows], loaded), encode([r[1] for r in rows], loaded)
        out[code] = round(retrieval_accuracy(english, other)["accuracy"], 2)
    return out


def cached(path: Path, compute) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value, indent=1))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-weak-languages"))
    parser.add_argument("--budget-minutes", type=float, default=8.0)
    parser.add_argument("--heldout", type=int, default=200, help="held-out pairs per language")
    parser.add_argument("--min-pairs", type=int, default=700, help="languages with fewer pairs are left out")
    parser.add_argument("--train-cap", type=int, default=3000, help="training pairs per weak language")
    parser.add_argument("--others-per-lang", type=int, default=300, help="training pairs per other language")
    parser.add_argument("--weak-below", type=float, default=75.0)
    parser.add_argument("--anchor", type=float, default=0.0, help="distill --anchor")
    parser.add_argument("--freeze-layers", type=int, default=0, help="distill --freeze-layers")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--head-lr", type=float, default=2e-5)
    parser.add_argument("--train-embeddings", action="store_true", help="train the word embeddings too")
    parser.add_argument("--contrastive", type=float, default=0.0, help="distill --contrastive")
    parser.add_argument("--merge-start", type=float, default=1.0, help="distill --merge-start (1: trained weights)")
    parser.add_argument("--results", default="weak_languages", help="name of the results files")
    args = parser.parse_args()
    shared = require_shared()
    args.work.mkdir(parents=True, exist_ok=True)
    info = machine()
    counts = cached(args.work / "counts.json", lambda: split(shared, args.work, args.heldout, args.min_pairs, 10**9))
    codes = sorted(counts)
    start = build_start(args.work / "start")
    before = cached(args.work / "start_scores.json", lambda: score(start, args.work, codes))
    weak = [c for c in codes if before[c] < args.weak_below]
    others = [c for c in codes if c not in weak]
    print(f"{len(codes)} languages, weak (< {args.weak_below:g}): {', '.join(weak)}")

    data = args.work / "data"
    for code in codes:  # training pairs: the weak languages' (capped), a few of every other language's
        cap = args.train_cap if code in weak else args.others_per_lang
        lines = (args.work / "train" / f"eng-{code}.tsv").read_text(encoding="utf-8").splitlines()
        data.mkdir(exist_ok=True)
        (data / f"eng-{code}.tsv").write_text("\n".join(lines[: cap + 1]) + "\n", encoding="utf-8")
    from mlembed.distill import distill
    from mlembed.distill.run_folder import RunFolder, read_record

    out = args.work / args.results  # one student (and its scores) per results name
    t0 = time.time()
    if read_record(out) is None:
        distill(
            data=[f"tsv:{data}"],
            output=str(out),
            student=start,
            student_map="none",
            max_pairs=None,
            max_minutes=args.budget_minutes,
            batch_size=64,
            lr=args.lr,
            head_lr=args.head_lr,
            freeze_embeddings=not args.train_embeddings,
            max_seq_length=64,
            anchor=args.anchor,
            freeze_layers=args.freeze_layers,
            contrastive=args.contrastive,
            merge_start=args.merge_start,
            eval_pairs=500,
            eval_steps=10**6,
            save_steps=100,
            resume=RunFolder(out).prepared,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = read_record(out)["result"]
    after = cached(args.work / f"{args.results}_scores.json", lambda: score(str(out), args.work, codes))
    mean = lambda scores, langs: round(float(np.mean([scores[c] for c in langs])), 2) if langs else None  # noqa: E731
    drops = {c: round(after[c] - before[c], 2) for c in others}
    summary = {
        "weak_languages": weak,
        "start_mean": mean(before, weak),
        "student_mean": mean(after, weak),
        "gain": round(mean(after, weak) - mean(before, weak), 2) if weak else None,
        "others_start_mean": mean(before, others),
        "others_student_mean": mean(after, others),
        "worst_other_change": min(drops.values()) if drops else None,
        "worst_other_language": min(drops, key=drops.get) if drops else None,
        "goal_gain_ge_10": bool(weak) and mean(after, weak) - mean(before, weak) >= 10,
        "goal_no_other_drop_gt_0_5": all(d >= -0.5 for d in drops.values()),
    }
    md = [
        "# Weak languages: distillation on the languages the start scores poorly (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: **{'yes' if info['native_bf16'] else 'no'}**. "
        f"Start: multilingual-e5-small + centred Procrustes rotation (packaged English only). Held-out: "
        f"{args.heldout} pairs per tatoeba-challenge language outside the 12 Tatoeba test languages (at least "
        f"{args.min_pairs} pairs). Weak: start < {args.weak_below:g}. Training: {args.budget_minutes:g} min "
        f"({result['steps']} steps), weak languages' pairs (at most {args.train_cap:,} each) + "
        f"{args.others_per_lang} of every other's; encoder lr {args.lr:g}, anchor {args.anchor:g}, "
        f"bottom layers frozen {args.freeze_layers}, word embeddings {'trained' if args.train_embeddings else 'frozen'}, "
        f"loss MSE{f' + {args.contrastive:g} x in-batch contrastive' if args.contrastive else ''}, "
        f"weights {'trained' if args.merge_start == 1 else f'merged with the start at {args.merge_start:g}'}, "
        "gradient checkpointing (the pretrained default). "
        f"Peak RSS of the benchmark process: {peak:,.0f} MB.",
        "",
        f"**Weak mean {summary['start_mean']} -> {summary['student_mean']} ({summary['gain']:+}); other "
        f"languages {summary['others_start_mean']} -> {summary['others_student_mean']}, worst change "
        f"{summary['worst_other_change']} ({summary['worst_other_language']}).**",
        "",
        "| language | weak | training pairs | start | student | change |",
        "|---|---|---:|---:|---:|---:|",
        *[
            f"| {c} | {'yes' if c in weak else ''} | {min(counts[c], args.train_cap if c in weak else args.others_per_lang):,} "
            f"| {before[c]:.1f} | {after[c]:.1f} | {after[c] - before[c]:+.1f} |"
            for c in codes
        ],
        "",
        f"Command: `python benchmarks/weak_languages.py --budget-minutes {args.budget_minutes:g}"
        + (f" --lr {args.lr:g}" if args.lr != 2e-5 else "")
        + (f" --anchor {args.anchor:g}" if args.anchor else "")
        + (f" --freeze-layers {args.freeze_layers}" if args.freeze_layers else "")
        + (" --train-embeddings" if args.train_embeddings else "")
        + (f" --contrastive {args.contrastive:g}" if args.contrastive else "")
        + (f" --merge-start {args.merge_start:g}" if args.merge_start != 1 else "")
        + (f" --results {args.results}" if args.results != "weak_languages" else "")
        + "`",
    ]
    data_out = {
        "benchmark": "weak_languages",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summary,
        "start": before,
        "student": after,
        "training_pairs": counts,
        "run": {**result, "wall_seconds": round(time.time() - t0), "peak_rss_mb": round(peak)},
    }
    write_results(args.results, data_out, "\n".join(md))


if __name__ == "__main__":
    main()
