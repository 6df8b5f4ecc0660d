"""The curve: what compute buys. One distillation run of the e5 student with mlembed's defaults, measured at
``--points`` minutes of training (15, 30, 60, 120), so a longer or a GPU run can be projected.

The run trains on distill_quality's data (tatoeba-challenge + gettext:system, the 12 Tatoeba languages,
decontaminated, ``--max-pairs-per-lang`` per language and source: more than two hours of steps) with the
pretrained student's defaults (whole encoder and map at 2e-5, word embeddings frozen, MSE plus the
contrastive term at 0.05, the saved model merged with the start at 0.3). It runs in segments: each trains
until the next point through ``mlembed distill --resume`` (the trainer continues from its checkpoint, of the
trained weights, on the same data order and learning-rate schedule: the trainer's, over the epochs,
``--lr-schedule epochs``, since mlembed's default ``budget`` schedule would anneal every segment to 0), then
the saved model, what a user would get at that point, is copied aside and measured with distill_quality's
evaluation beside the untrained start: Tatoeba, cross-model Tatoeba (English by the teacher), STS, held-out
NTREX languages and English fidelity on STS-b's English. The segment's last checkpoint (the trained weights before the merge) is kept too, and
``--merges 1,0.5`` adds for every point the model ``--merge-start alpha`` would have saved
(``start + alpha x (trained - start)``, WiSE-FT; 1: the trained weights unmerged), without training again.

    python benchmarks/distill_curve.py --points 15,30,60,120 --merges 1

Finished points are kept in ``--work``; rerunning continues with the next one, so the curve may be built over
several sessions. Minutes are the training seconds the runs measured (dev and checkpoints included); a segment
killed midway keeps its checkpointed steps but not its clock, so its point then holds a little more training
than its label. Writes ``benchmarks/results/distill_curve.{json,md}`` and the chart ``distill_curve.png`` after
every point.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

from _common import RESULTS, machine, require_shared, write_results
from _distill_eval import LANGS, STS, english_fidelity, evaluate


def segment(out: Path, shared: Path, minutes: float, args) -> dict:
    """Train until ``minutes`` more have passed (a new run the first time, then ``--resume``)."""
    from mlembed.distill import distill

    result = distill(
        resume=(out / "_distill" / "plan.json").exists(),
        keep_work=True,  # the checkpoints the next segment continues from
        data=[f"tsv:{shared}/tatoeba-challenge", "gettext:system"],
        langs=LANGS,
        decontaminate=[str(shared / "tatoeba")],
        output=str(out),
        max_pairs=None,
        max_pairs_per_lang=args.max_pairs_per_lang,
        max_minutes=minutes,
        epochs=1,
        # one schedule across the segments, as the committed points ran: the default (budget) would anneal each
        # segment to 0 over its own minutes and restart the next
        lr_schedule="epochs",
        batch_size=args.batch_size,
        eval_pairs=1000,
        eval_steps=10**6,  # dev figures at the end of each segment (result.dev), not in between
        save_steps=args.save_steps,
    )
    return {
        "steps": result.steps,
        "train_seconds": result.train_seconds,
        "dev": result.dev,
        "dev_start": result.dev_start,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-distill-curve"))
    parser.add_argument("--points", default="15,30,60,120", help="minutes of training at which to measure")
    parser.add_argument("--max-pairs-per-lang", type=int, default=10000, help="per language and data source")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--save-steps", type=int, default=200)
    parser.add_argument("--heldout-limit", type=int, default=300, help="NTREX sentences per held-out language")
    parser.add_argument(
        "--merges", default="1", help="also measure each point's trained weights merged with the start at these alphas"
    )
    args = parser.parse_args()
    args.merges = [float(a) for a in args.merges.split(",") if a]
    points = sorted(float(p) for p in args.points.split(","))
    shared = require_shared()
    args.work.mkdir(parents=True, exist_ok=True)
    state_path = args.work / "curve.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"points": []}
    run = args.work / "run"
    info = machine()
    for point in points:
        if any(p["minutes"] == point for p in state["points"]):
            continue
        done = sum(p["segment"]["train_seconds"] for p in state["points"]) / 60
        t0 = time.time()
        figures = segment(run, shared, point - done, args)
        print(f"{point:g} min: {figures['steps']} steps, segment wall {time.time() - t0:.0f} s")
        copy = args.work / f"at-{point:g}min"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("_distill"))
        keep_trained(run, args.work / f"at-{point:g}min-trained")
        state["points"].append({"minutes": point, "folder": str(copy), "segment": figures})
        state_path.write_text(json.dumps(state, indent=1))
        report(state, run, shared, args, info)
    if state["points"]:  # merges asked for points already measured (each model is evaluated once)
        report(state, run, shared, args, info)


def keep_trained(run: Path, out: Path) -> None:
    """Copy the model files of the run's last checkpoint (the trained weights, before the merge that the saved
    model had) to ``out``; optimizer and trainer state stay behind."""
    checkpoints = sorted(
        (run / "_distill" / "checkpoints").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1])
    )
    shutil.rmtree(out, ignore_errors=True)
    state = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "trainer_state.json", "training_args.bin")
    shutil.copytree(checkpoints[-1], out, ignore=shutil.ignore_patterns(*state))


def merged(trained: Path, start: Path, alpha: float, out: Path) -> str:
    """The trained weights merged with the start at ``alpha``, saved once to ``out`` (what ``--merge-start``
    would have given after the same training); ``alpha`` 1 is ``trained`` itself."""
    from sentence_transformers import SentenceTransformer

    from mlembed.distill.merge import interpolate

    if alpha == 1:
        return str(trained)
    if not (out / "modules.json").exists():
        model = SentenceTransformer(str(trained), device="cpu")
        interpolate(model, SentenceTransformer(str(start), device="cpu"), alpha)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp))
        tmp.rename(out)
    return str(out)


def report(state: dict, run: Path, shared: Path, args, info: dict) -> None:
    """Evaluate the start and every finished point (each once), then write the curve's JSON and markdown."""
    models = {"start": str(run / "_distill" / "student-init")}
    for p in state["points"]:
        models[f"{p['minutes']:g} min"] = p["folder"]
        trained = args.work / f"at-{p['minutes']:g}min-trained"
        for alpha in args.merges if (trained / "modules.json").exists() else []:
            folder = args.work / f"at-{p['minutes']:g}min-trained-merged-{alpha:g}"
            name = f"{p['minutes']:g} min, {'unmerged' if alpha == 1 else f'merged {alpha:g}'}"
            models[name] = merged(trained, run / "_distill" / "student-init", alpha, folder)
    table = evaluate(models, shared, args.work / "eval", args.heldout_limit)
    fidelity_path = args.work / "fidelity.json"
    fidelity = json.loads(fidelity_path.read_text()) if fidelity_path.exists() else {}
    fidelity |= english_fidelity({n: m for n, m in models.items() if n not in fidelity}, shared)
    fidelity_path.write_text(json.dumps(fidelity, indent=1))
    segments = {
        name: p["segment"] for p in state["points"] for name in models if name.startswith(f"{p['minutes']:g} min")
    }
    segments["start"] = {"steps": 0, "dev": state["points"][0]["segment"]["dev_start"], "peak_rss_mb": None}
    rows = {}
    for name in models:
        t, seg = table[name], segments[name]
        rows[name] = {
            "minutes": 0 if name == "start" else float(name.split()[0]),
            "steps": seg["steps"],
            "tatoeba": t["tatoeba"]["mean"],
            "cross_model": t["tatoeba-cross"]["mean"],
            "heldout": t["translation"]["mean"],
            **{f"sts_{c}": t["sts"][c] for c in STS},
            "english_cosine": fidelity[name]["mean_cosine"],
            "dev_mean_accuracy": None if "merged" in name else seg["dev"].get("mean_accuracy"),  # of the saved model
            "peak_rss_mb": seg["peak_rss_mb"],
        }
    last = rows[f"{state['points'][-1]['minutes']:g} min"]
    goals = {
        "cross_model_within_2_of_tatoeba": last["tatoeba"] - last["cross_model"] <= 2,
        "sts_en_ge_81": last["sts_en"] >= 81,
        "at_minutes": last["minutes"],
    }
    cols = ["minutes", "steps", "tatoeba", "cross_model", "heldout", *[f"sts_{c}" for c in STS], "english_cosine"]
    cols += ["dev_mean_accuracy", "peak_rss_mb"]
    md = [
        "# The curve: the e5 student's default recipe measured along one run (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: **{'yes' if info['native_bf16'] else 'no'}** "
        f"(flags: {', '.join(info.get('cpu_flags', [])) or 'none'}). Data: tatoeba-challenge + gettext:system, the "
        f"12 Tatoeba languages, decontaminated, at most {args.max_pairs_per_lang:,} pairs per language and source; "
        f"batch {args.batch_size}; mlembed's pretrained-student defaults (whole encoder and map at 2e-5, word "
        "embeddings frozen, MSE + contrastive 0.05, saved merged with the start at 0.3). Each *N min* row is the "
        "model `mlembed distill` saves after that many minutes of training of the same run (continued with "
        "`--resume`), what a user gets; an *unmerged* row is the trained weights of that point (its last "
        "checkpoint) without the merge, a *merged alpha* row those weights as `--merge-start alpha` would save "
        "them, `start + alpha x (trained - start)`. Peak RSS: the benchmark process up to the end of that "
        "segment's training.",
        "",
        "| " + " | ".join(["model", *cols]) + " |",
        "|---|" + "---:|" * len(cols),
        *[
            "| " + " | ".join([name, *("—" if r[c] is None else f"{r[c]:g}" for c in cols)]) + " |"
            for name, r in rows.items()
        ],
        "",
        f"Goals at {goals['at_minutes']:g} min: cross-model within 2 of the student's own Tatoeba: "
        f"**{'met' if goals['cross_model_within_2_of_tatoeba'] else 'not met'}** "
        f"({last['cross_model']:g} vs {last['tatoeba']:g}); STS en >= 81: "
        f"**{'met' if goals['sts_en_ge_81'] else 'not met'}** ({last['sts_en']:g}; the teacher: 82.0).",
        "",
        f"Command: `python benchmarks/distill_curve.py --points {args.points}"
        + (f" --merges {','.join(f'{a:g}' for a in args.merges)}`" if args.merges else "`"),
    ]
    data = {
        "benchmark": "distill_curve",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "curve": rows,
        "goals": goals,
        "segments": state["points"],
    }
    md[-2:-2] = ["![the curve](distill_curve.png)", ""]
    chart(rows, RESULTS / "distill_curve.png")
    write_results("distill_curve", data, "\n".join(md))


def chart(rows: dict, path: Path) -> None:
    """The curve as a PNG: retrieval (Tatoeba, cross-model, held-out) and STS en against minutes of training, the
    saved models as solid lines from the start, their unmerged weights dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlembed.files import atomic_path

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.2), dpi=150)
    panels = [
        (left, [("tatoeba", "Tatoeba"), ("cross_model", "cross-model"), ("heldout", "held-out")], "accuracy"),
        (right, [("sts_en", "STS en")], "Spearman x100"),
    ]
    for ax, series, ylabel in panels:
        for i, (key, label) in enumerate(series):
            for suffix, style in (("", "-"), (", unmerged", "--")):
                names = ["start"] + [n for n in rows if n != "start" and n.split(" min", 1)[1] == suffix]
                if len(names) > 1:
                    xs, ys = [rows[n]["minutes"] for n in names], [rows[n][key] for n in names]
                    ax.plot(xs, ys, style, color=f"C{i}", marker="o", markersize=3, label=label + suffix)
        ax.set_xlabel("minutes of training (2 CPU cores)")
        ax.set_ylabel(ylabel)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=8, frameon=False)
    right.axhline(82.0, color="grey", linewidth=0.8, linestyle=":")
    right.annotate("teacher 82.0", (0, 82.0), fontsize=8, color="grey", xytext=(2, 3), textcoords="offset points")
    fig.suptitle("The e5 student along one run of mlembed's defaults", fontsize=11)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
