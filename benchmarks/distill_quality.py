"""Distillation quality: a 60-minute student vs the teacher as-is vs mUSE on Tatoeba (12 languages).

Trains on tatoeba-challenge + NTREX-128 + gettext:system (decontaminated again against
../shared/data/tatoeba by the pipeline), restricted to the 12 evaluated languages, within a training
budget of ``--budget-minutes`` on this machine; then evaluates the student, the teacher and mUSE side
by side with ``mlembed evaluate`` on the same run. Also: English fidelity (MSE x100 to the teacher on
held-out English: the STS benchmark's English test sentences) and an ablation at equal steps on a
smaller sample: plain teacher copy vs extended vocabulary with spelling or translation initialisation,
the extended students also untrained (step 0).

    python benchmarks/distill_quality.py --budget-minutes 60 --ablation-steps 150

Each stage is skipped when its output exists in --work, so an interrupted benchmark continues.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from _common import machine, require_shared, write_results

ABLATION = [("ablation-copy", "minilm-en", "spelling"), ("ablation-spelling", "auto", "spelling"),
            ("ablation-translation", "auto", "translation")]
LANGS = ["ara", "ces", "cmn", "deu", "fra", "hin", "jpn", "rus", "spa", "tur", "ukr", "vie"]


def train(name: str, work: Path, shared: Path, minutes: float | None, max_pairs: int, student: str, args,
          vocab_init: str = "translation", max_steps: int = -1, keep_work: bool = False) -> dict:
    from mlembed.distill import distill

    out = work / name
    if (out / "mlembed.json").exists():
        print(f"{name}: exists, reusing {out}")
        saved = json.loads((out / "mlembed.json").read_text())
        return {**saved["result"], "peak_rss_mb_so_far": saved.get("benchmark_peak_rss_mb")}
    t0 = time.time()
    result = distill(
        keep_work=keep_work,
        data=[f"tsv:{shared}/tatoeba-challenge", f"ntrex:{shared}/ntrex128", "gettext:system"],
        langs=LANGS,
        decontaminate=[str(shared / "tatoeba")],
        output=str(out),
        student=student,
        max_pairs=max_pairs,
        max_pairs_per_lang=args.max_pairs_per_lang,
        max_minutes=minutes,
        max_steps=max_steps,
        vocab_init=vocab_init,
        epochs=1,
        batch_size=args.batch_size,
        lr=args.lr,
        embedding_lr=args.embedding_lr,
        new_tokens=args.new_tokens,
        max_seq_length=args.max_seq_length,
        eval_pairs=1000,
        eval_steps=args.eval_steps,
        save_steps=args.save_steps,
        resume=(out / "_distill" / "plan.json").exists(),
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name}: {result.steps} steps, {time.time() - t0:.0f} s wall, peak RSS of this process so far {peak:.0f} MB")
    saved = json.loads((out / "mlembed.json").read_text())
    saved["benchmark_peak_rss_mb"] = round(peak)  # the whole benchmark process up to the end of this run
    (out / "mlembed.json").write_text(json.dumps(saved, indent=1, ensure_ascii=False))
    return {**saved["result"], "peak_rss_mb_so_far": round(peak)}


def evaluate(models: dict[str, str], shared: Path, out: Path) -> dict[str, dict[str, float]]:
    """Tatoeba accuracy (mean of both directions) per model and language, all models in one run."""
    from mlembed.evaluation import evaluate as run_tasks
    from mlembed.evaluation import parse_task
    from mlembed.evaluation.report import read_results, write_report

    if (out / "results.json").exists():  # an interrupted benchmark keeps its finished evaluation
        results = read_results(out / "results.json")
    else:
        results = run_tasks(models, [parse_task(f"tatoeba:{shared}/tatoeba")])
        write_report(results, out, command="benchmarks/distill_quality.py (tatoeba stage)")
    return {name: {"mean": round(r.main_score, 2), **{k: round(v, 2) for k, v in r.per_language.items()}}
            for name, r in results}


def english_fidelity(students: dict[str, str], shared: Path) -> dict[str, dict]:
    """MSE x100 between each student's and the teacher's embeddings of English sentences never trained on
    (the teacher encodes them once for all students)."""
    import numpy as np

    from mlembed.encode import encode
    from mlembed.evaluation.sts import read_stsb_multi_mt

    sts = read_stsb_multi_mt(shared / "stsb-multi-mt", "en", "test")
    sentences = sorted(set(sts.sentence1) | set(sts.sentence2))
    t = encode(sentences, "minilm-en")
    out = {}
    for name, path in students.items():
        s = encode(sentences, path)
        cos = (t * s).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(s, axis=1)
        out[name] = {"sentences": len(sentences), "mse_x100": round(float(((t - s) ** 2).mean() * 100), 4),
                     "mean_cosine": round(float(cos.mean()), 4)}
    return out

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-distill-quality"), help="models and reports")
    parser.add_argument("--budget-minutes", type=float, default=60.0)
    parser.add_argument("--ablation-steps", type=int, default=150, help="training steps of each ablation run; 0 skips it")
    parser.add_argument("--max-pairs-per-lang", type=int, default=5000, help="per language and data source")
    parser.add_argument("--ablation-pairs-per-lang", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--embedding-lr", type=float, default=1e-3)
    parser.add_argument("--new-tokens", type=int, default=30000)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--eval-steps", type=int, default=500)
    parser.add_argument("--save-steps", type=int, default=500)
    args = parser.parse_args()
    shared = require_shared()
    args.work.mkdir(parents=True, exist_ok=True)

    runs = {"student": train("student", args.work, shared, args.budget_minutes, None, "auto", args)}
    models = {"student": str(args.work / "student"), "teacher": "minilm-en", "muse": "muse"}
    if args.ablation_steps:
        # same data, same number of steps: plain teacher copy vs extended vocabulary with each initialisation;
        # the extended students are also evaluated untrained (their saved initial weights: step 0)
        cap, args.max_pairs_per_lang = args.max_pairs_per_lang, args.ablation_pairs_per_lang
        for name, student, init in ABLATION:
            runs[name] = train(name, args.work, shared, None, None, student, args, vocab_init=init,
                               max_steps=args.ablation_steps, keep_work=True)
            models[name] = str(args.work / name)
            if student == "auto":
                models[f"{name}-step0"] = str(args.work / name / "_distill" / "student-init")
        args.max_pairs_per_lang = cap
    tatoeba = evaluate(models, shared, args.work / "eval")
    fidelity = english_fidelity({n: p for n, p in models.items() if n not in ("teacher", "muse")}, shared)

    langs = [k for k in tatoeba["student"] if k != "mean"]
    head = "| model | " + " | ".join(langs) + " | mean |\n|---|" + "---:|" * (len(langs) + 1)
    rows = "\n".join(f"| {m} | " + " | ".join(f"{t[l]:.1f}" for l in langs) + f" | **{t['mean']:.1f}** |"
                     for m, t in tatoeba.items())
    s = runs["student"]
    info = machine()
    goal = {"mean_above_muse": tatoeba["student"]["mean"] > tatoeba["muse"]["mean"],
            "ge90_deu_fra_spa_rus": all(tatoeba["student"][l] >= 90 for l in ("deu", "fra", "spa", "rus"))}
    md = [
        "# Distillation quality: Tatoeba accuracy (mean of xx->eng and eng->xx, %)",
        "",
        f"Student: teacher `minilm-en` + extended vocabulary, distilled for a {args.budget_minutes:.0f}-minute training "
        f"budget ({s['steps']:,} steps of {args.batch_size} pairs, {s['train_seconds'] / 60:.1f} min training + "
        f"{s['prep_seconds'] / 60:.1f} min preparation) on tatoeba-challenge + NTREX-128 + gettext:system "
        f"({sum(s['pairs_per_language'].values()):,} pairs sampled, at most {args.max_pairs_per_lang:,} per language "
        "and source, decontaminated against ../shared/data/tatoeba), same run as the teacher and mUSE.",
        f"Machine: {info['cpu_count']} CPU cores; load average (1/5/15 min) when the run ended: "
        f"{', '.join(map(str, info['load_average_1_5_15']))}.",
        "",
        head,
        rows,
        "",
        f"Goals: student mean above mUSE: **{'yes' if goal['mean_above_muse'] else 'no'}**; "
        f">= 90 on deu, fra, spa, rus: **{'yes' if goal['ge90_deu_fra_spa_rus'] else 'no'}**.",
        "",
        f"## English fidelity (MSE x100 to the teacher on the {next(iter(fidelity.values()))['sentences']:,} distinct "
        "English STS-b test sentences, never trained on)",
        "",
        "| model | MSE x100 | mean cosine to teacher |",
        "|---|---:|---:|",
        *[f"| {m} | {f['mse_x100']} | {f['mean_cosine']} |" for m, f in fidelity.items()],
        "",
        "## Dev figures of each run (held-out training-distribution pairs)",
        "",
        "| run | steps | train min | dev MSE x100 | dev accuracy |",
        "|---|---:|---:|---:|---:|",
        *[f"| {n} | {r['steps']} | {r['train_seconds'] / 60:.1f} | {r['dev'].get('mse_x100')} | {r['dev'].get('mean_accuracy')} |"
          for n, r in runs.items()],
    ]
    if args.ablation_steps:
        md += ["", f"Ablation: the `ablation-*` runs use the same data (at most {args.ablation_pairs_per_lang:,} pairs per "
               f"language and source) and the same number of steps ({args.ablation_steps}); `ablation-copy` is a plain copy "
               "of the teacher (its English WordPiece vocabulary); `ablation-spelling` and `ablation-translation` add the "
               "learned subwords, initialised from the teacher's pieces of their spelling or from the English subwords "
               "they co-occur with in the pairs (`--vocab-init`); `-step0` rows are those students before training."]
    md += ["", f"Command: `python benchmarks/distill_quality.py --budget-minutes {args.budget_minutes:g} "
           f"--ablation-steps {args.ablation_steps}`"]
    data = {"benchmark": "distill_quality", "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
            "tatoeba": tatoeba, "english_fidelity": fidelity, "runs": runs, "goals": goal}
    write_results("distill_quality", data, "\n".join(md))


if __name__ == "__main__":
    main()
