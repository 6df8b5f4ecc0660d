"""Mining quality: NTREX-128 gold pairs hidden among distractors, F1 of every margin x mode, per model.

Every figure comes from the library's task, :class:`mlembed.evaluation.mining.MiningTask` (what
``mlembed evaluate --task mining:...`` runs): English NTREX newstest2019 sentences and their German
and Chinese (zho-CN) references, hidden among ``--ratio`` distractors per gold pair on each side
(Tatoeba-Challenge sentences, then gettext ones; no distractor translates another), all mined in
one run per language. The threshold maximising F1 on half of the NTREX documents is applied to the
other half; also reported: that half's F1 at the documented default threshold of the margin (what
``mlembed mine`` uses uncalibrated) and at its own best threshold (oracle).

The sentences and split are built once and shared by the 12 margin x mode variants
(:meth:`MiningTask.scored_by`); each model encodes each sentence once.

Writes ``benchmarks/results/mining_quality.{json,md}``. Run with
``nice -n 15 python benchmarks/mining_quality.py [--model minilm-en --model muse --model STUDENT_DIR]``.
"""

from __future__ import annotations

import argparse
import time

from _common import load_results, machine, require_shared, write_results

LANGS = ("deu", "zho-CN")  # NTREX codes
GETTEXT = {"deu": "de", "zho-CN": "zh-Hans"}


def render(data: dict) -> str:
    from mlembed.mine import MARGINS

    runs = data["runs"]
    models = list(dict.fromkeys(r["model"] for r in runs))
    langs = list(dict.fromkeys(r["lang"] for r in runs))
    mode = data["summary_mode"]
    head = [f"{lang} {m}" for lang in langs for m in MARGINS]
    lines = [
        "# Mining quality: NTREX-128 gold pairs among distractors",
        "",
        "Produced by `benchmarks/mining_quality.py` (its docstring gives the method).",
        "",
        f"```\n{data['command']}\n```",
        "",
        data["setup"],
        "",
        f"Test-half F1 x100 at the dev half's threshold / at the margin's default threshold, `{mode}` mode:",
        "",
        "| model | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for model in models:
        cells = []
        for lang in langs:
            for margin in MARGINS:
                (r,) = [
                    x for x in runs if (x["model"], x["lang"], x["margin"], x["mode"]) == (model, lang, margin, mode)
                ]
                cells.append(f"{r['f1']:.1f} / {r['default_f1']:.1f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Every margin and mode:",
        "",
        "| model | lang | margin | mode | threshold (dev) | precision | recall | F1 | F1 at default | oracle F1 |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['model']} | {r['lang']} | {r['margin']} | {r['mode']} | {r['threshold']:.4f} | {r['precision']:.1f} | "
            f"{r['recall']:.1f} | {r['f1']:.1f} | {r['default_f1']:.1f} | {r['oracle_f1']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", action="append", help="repeatable; a peer name, model folder or hub id [minilm-en, muse]"
    )
    ap.add_argument("--ratio", type=float, default=10.0, help="distractors per gold pair on each side [%(default)s]")
    ap.add_argument("--langs", nargs="*", default=list(LANGS), choices=list(LANGS))
    ap.add_argument("--summary-mode", default="intersect", help="the mode of the summary table [%(default)s]")
    args = ap.parse_args()
    models = args.model or ["minilm-en", "muse"]
    shared = require_shared()
    from mlembed.evaluation import PEERS
    from mlembed.evaluation.base import EmbeddingCache
    from mlembed.evaluation.mining import MiningTask
    from mlembed.mine import MARGINS, MODES
    from mlembed.models import load_model

    task = MiningTask(
        f"ntrex:{shared / 'ntrex128'}:{','.join(args.langs)}",
        [f"tsv:{shared / 'tatoeba-challenge'}", f"gettext:system:{','.join(GETTEXT[x] for x in args.langs)}"],
        ratio=args.ratio,
    )
    t0 = time.perf_counter()
    setups = task.setups()
    print(f"sentences ready in {time.perf_counter() - t0:.0f} s", flush=True)
    old = load_results("mining_quality")
    runs = [r for r in old.get("runs", []) if r["model"] not in models]
    command = "python benchmarks/mining_quality.py " + " ".join(f"--model {m}" for m in models)
    data = {
        "machine": machine(),
        "command": command + (f" --ratio {args.ratio:g}" if args.ratio != 10.0 else ""),
        "summary_mode": args.summary_mode,
        "setup": (
            "Per language: "
            + "; ".join(
                f"{st['key']}: {len(st['gold']):,} gold pairs ({sum(bool(st['src_dev'][i]) for i, _ in st['gold']):,} in the "
                f"dev half), {st['distractors']['src']:,} source and {st['distractors']['tgt']:,} English distractors"
                for st in setups
            )
            + ". k=4."
        ),
        "runs": runs,
    }
    for model in models:
        cache = EmbeddingCache(load_model(PEERS.get(model, model)), name=model)
        started = time.perf_counter()
        for margin in MARGINS:
            for mode in MODES:
                result = task.scored_by(margin, mode).evaluate(cache)
                for lang, s in result.scores.items():
                    runs.append({"model": model, "lang": lang, "margin": margin, "mode": mode, **s})
        print(model, f"{time.perf_counter() - started:.0f} s", flush=True)
        write_results("mining_quality", data, render(data))


if __name__ == "__main__":
    main()
