"""Which training keeps what the start knows: distillation recipes from one start, one budget, one table.

Every recipe starts from the same student (multilingual-e5-small with the centred Procrustes rotation into
the teacher's space, ``--student-map procrustes``), trains for the same ``--budget-minutes`` on the same data
as ``distill_quality.py`` (tatoeba-challenge + gettext:system, the 12 Tatoeba languages, decontaminated), and
is measured beside the untrained start (``start``) and the default start (least squares, whole
encoder) with distill_quality's evaluation: Tatoeba, cross-model Tatoeba (English by the teacher), STS,
held-out NTREX languages never trained on, and English fidelity on STS-b's English.

    python benchmarks/distill_recipes.py --budget-minutes 4

Finished runs and the evaluation are reused from ``--work``, so an interrupted benchmark continues.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _common import machine, require_shared, write_results
from _distill_eval import HELDOUT, LANGS, STS, english_fidelity, evaluate, train

#: recipe -> distill options (on top of distill_quality's e5 options); all share the procrustes start. Each sets
#: what it varies explicitly: the student's defaults (``STUDENT_DEFAULTS``) change as recipes win
PROCRUSTES = {"student_map": "procrustes", "freeze_layers": 0, "anchor": 0.0, "merge_start": 1.0}
RECIPES = {
    "lstsq-whole (previous default)": {**PROCRUSTES, "student_map": "lstsq"},
    "whole encoder": PROCRUSTES,
    "anchor 0.5": {**PROCRUSTES, "anchor": 0.5},
    "top 4 layers": {**PROCRUSTES, "freeze_layers": 8, "lr": 1e-4},
    "top 4 layers + anchor 0.5": {**PROCRUSTES, "freeze_layers": 8, "lr": 1e-4, "anchor": 0.5},
    "whole encoder + contrastive 0.05": {**PROCRUSTES, "contrastive": 0.05},
    # WiSE-FT: a recipe's trained weights averaged with the start's (``--merge-start``), no further training
    "whole encoder, merged 0.5": {"merge_of": "whole encoder", "merge_start": 0.5},
    "whole encoder, merged 0.3": {"merge_of": "whole encoder", "merge_start": 0.3},
    "anchor 0.5, merged 0.5": {"merge_of": "anchor 0.5", "merge_start": 0.5},
    "top 4 layers + anchor 0.5, merged 0.5": {"merge_of": "top 4 layers + anchor 0.5", "merge_start": 0.5},
    "whole encoder + contrastive 0.05, merged 0.3": {
        "merge_of": "whole encoder + contrastive 0.05",
        "merge_start": 0.3,
    },
}


def folder_of(name: str) -> str:
    """A recipe's folder name in --work."""
    return name.split(" (")[0].replace(", ", "-").replace(" ", "-").replace("+", "and").replace(".", "")


def merged(recipe: dict, work: Path) -> Path:
    """The folder of ``recipe["merge_of"]``'s trained student with its weights averaged with its start's, as
    ``mlembed distill --merge-start`` saves it (made once, then reused)."""
    from sentence_transformers import SentenceTransformer

    from mlembed.distill.merge import interpolate

    base = work / folder_of(recipe["merge_of"])
    out = work / f"{folder_of(recipe['merge_of'])}-merged-{recipe['merge_start']:g}".replace(".", "")
    if not (out / "modules.json").exists():
        model = SentenceTransformer(str(base), device="cpu")
        interpolate(
            model, SentenceTransformer(str(base / "_distill" / "student-init"), device="cpu"), recipe["merge_start"]
        )
        model.save(str(out) + ".tmp")
        os.replace(str(out) + ".tmp", out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-distill-recipes"))
    parser.add_argument("--budget-minutes", type=float, default=4.0, help="training budget of each recipe")
    parser.add_argument("--max-pairs-per-lang", type=int, default=1000, help="per language and data source")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-5, help="encoder learning rate (unless a recipe sets it)")
    parser.add_argument("--head-lr", type=float, default=2e-5, help="the map's learning rate (as slow as the encoder)")
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--eval-steps", type=int, default=10**6, help="(no dev curve here)")
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--heldout-limit", type=int, default=300, help="NTREX sentences per held-out language")
    parser.add_argument(
        "--results", default="distill_recipes", help="benchmarks/results/NAME.{json,md} to write [%(default)s]"
    )
    parser.add_argument("--recipes", default=";".join(RECIPES), help="';'-separated subset of the recipes")
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))
    args.work.mkdir(parents=True, exist_ok=True)
    info = machine()
    chosen = [r.strip() for r in args.recipes.split(";") if r.strip()]
    runs = {}
    merges = {}
    for name in chosen:
        if "merge_of" in RECIPES[name]:
            merges[name] = str(merged(RECIPES[name], args.work))
            continue
        runs[name] = train(folder_of(name), "e5-small", args.work, shared, args, **RECIPES[name])
        runs[name]["folder"] = str(args.work / folder_of(name))
    first = next(r["folder"] for n, r in runs.items() if RECIPES[n].get("student_map") == "procrustes")
    models = {
        "start": str(Path(first) / "_distill" / "student-init"),
        **{n: r["folder"] for n, r in runs.items()},
        **merges,
    }
    table = evaluate({**models, "teacher": "minilm-en"}, shared, args.work / "eval", args.heldout_limit)
    fidelity = english_fidelity(models, shared)
    rows = {}
    for name in models:
        t = table[name]
        rows[name] = {
            "tatoeba": t["tatoeba"]["mean"],
            "cross_model": t["tatoeba-cross"]["mean"],
            "heldout": t["translation"]["mean"],
            **{f"sts_{k}": t["sts"][k] for k in STS},
            "english_cosine": fidelity[name]["mean_cosine"],
        }
        if name in runs or name in merges:
            r = runs[RECIPES[name].get("merge_of", name)]
            rows[name].update(
                steps=r["steps"],
                s_per_step=round(r["train_seconds"] / max(r["steps"], 1), 2),
                peak_rss_mb=r.get("peak_rss_mb_so_far"),
            )
    start = rows["start"]
    sts_cols = [f"sts_{k}" for k in STS]
    for name, row in rows.items():
        if name == "start":
            continue
        row["keeps_start"] = bool(
            all(row[c] >= start[c] - 0.5 for c in ("tatoeba", "heldout", *sts_cols))
            and row["cross_model"] > start["cross_model"]
            and row["english_cosine"] > start["english_cosine"]
        )
    cols = ["tatoeba", "cross_model", "heldout", *sts_cols, "english_cosine"]
    head = "| recipe | steps | s/step | " + " | ".join(cols) + " | keeps the start |"
    md = [
        "# Distillation recipes from one start, one budget (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: **{'yes' if info['native_bf16'] else 'no'}**. Each "
        f"recipe: {args.budget_minutes:g} minutes of training, batch {args.batch_size}, at most "
        f"{args.max_pairs_per_lang:,} pairs per language and source (tatoeba-challenge + gettext:system, the 12 "
        "Tatoeba languages, decontaminated), from multilingual-e5-small with the centred Procrustes rotation "
        f"(except the lstsq row: least squares). Encoder lr {args.lr:g} unless the recipe says; map lr "
        f"{args.head_lr:g}. Held-out: NTREX {', '.join(HELDOUT)} (first {args.heldout_limit} sentences), never "
        "trained on. 'keeps the start': within 0.5 of the start on Tatoeba, held-out and every STS column, and "
        "above it on cross-model and English cosine. '*, merged A*': that recipe's trained weights averaged with "
        "the start's, start + A x (trained - start) (WiSE-FT, `mlembed distill --merge-start A`), no more training.",
        "",
        head,
        "|---|" + "---:|" * (len(cols) + 3),
        *[
            f"| {n} | {r.get('steps', 0)} | {r.get('s_per_step', '—')} | "
            + " | ".join(f"{r[c]:.1f}" if c != "english_cosine" else f"{r[c]:.3f}" for c in cols)
            + f" | {'—' if n == 'start' else ('**yes**' if r['keeps_start'] else 'no')} |"
            for n, r in rows.items()
        ],
        "",
        f"Teacher: STS en {table['teacher']['sts']['en']:.1f}. Tatoeba per language and the charts: "
        "the evaluation report in --work/eval.",
        "",
        f"Command: `python benchmarks/distill_recipes.py --budget-minutes {args.budget_minutes:g} --recipes "
        f"'{';'.join(chosen)}'`",
    ]
    data = {
        "benchmark": "distill_recipes",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "recipes": {n: RECIPES.get(n, {}) for n in models},
        "rows": rows,
        "tatoeba_per_language": {n: table[n]["tatoeba"] for n in models},
        "runs": {n: {k: v for k, v in r.items() if k != "log_history"} for n, r in runs.items()},
        "languages": LANGS,
    }
    write_results(args.results, data, "\n".join(md))


if __name__ == "__main__":
    main()
