"""The main job as a new user runs it: ``mlembed distill`` with no arguments, timed, its memory sampled, and its
student measured against its own start on ordinary sentences (one run).

``mlembed distill`` trains on the machine's gettext catalogs (software strings). What a user gets must carry
to ordinary text, so the student and its untrained start (rebuilt from the run's ``start_map.npz``) are
measured with distill_quality's evaluation: Tatoeba (12 languages), cross-model Tatoeba (English by the
teacher), STS (stsb-multi-mt, 9 columns), held-out NTREX languages and English fidelity on STS-b's English.
The run's resident memory is sampled every 0.5 s and attributed to the stage its log was in, so the peak
has a name.

    python benchmarks/main_job.py [--work /tmp/mlembed-main-job] [-- extra distill options]

Writes ``benchmarks/results/main_job.{json,md}``. Needs ``../shared/data`` for the evaluation.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import machine, require_shared, rss_mb, write_results
from _distill_eval import STS, english_fidelity, evaluate


def run_sampled(command: list[str], log: Path) -> dict:
    """Run ``command``; keep its output lines (progress bars left out) with the second each came, sample its
    resident memory every 0.5 s, and return wall seconds, the peak (the kernel's count for the child) and
    the peak seen in each stage (a stage starts at a log line of mlembed's)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    t0 = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    stage = ["start"]
    stages: dict[str, float] = {}

    def sample() -> None:
        while child.poll() is None:
            rss = rss_mb(child.pid)
            if rss is None:
                break
            stages[stage[0]] = max(stages.get(stage[0], 0.0), rss)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    with log.open("w") as fh:
        for line in child.stdout:
            for part in line.replace("\r", "\n").splitlines():
                if not part.strip() or "it/s]" in part or "s/it]" in part or "sent/s]" in part:
                    continue
                fh.write(f"{time.time() - t0:7.1f} {part}\n")
                lines.append(part)
                if part.startswith("[mlembed"):
                    stage[0] = part.split("] ", 1)[-1][:90]
    child.wait()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "exit_code": child.returncode,
        "wall_s": round(time.time() - t0, 1),
        "peak_rss_mb": round(peak),
        "peak_rss_mb_by_stage": {k: round(v) for k, v in stages.items()},
        "output": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-main-job"))
    parser.add_argument("--heldout-limit", type=int, default=300, help="NTREX sentences per held-out language")
    parser.add_argument("distill_options", nargs="*", help="after --: options added to `mlembed distill`")
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))
    args.work.mkdir(parents=True, exist_ok=True)
    info = machine()
    out = args.work / "mlembed-student"
    command = [sys.executable, "-m", "mlembed", "distill", "--output", str(out), "--overwrite", *args.distill_options]
    run = run_sampled(command, args.work / "distill.log")
    if run["exit_code"] != 0:
        raise SystemExit(f"mlembed distill failed (exit {run['exit_code']}): see {args.work / 'distill.log'}")
    from mlembed.distill.head import start_model
    from mlembed.distill.run_folder import read_record

    start = args.work / "start"
    start_model(str(out)).save(str(start))
    saved = read_record(out)
    models = {"start": str(start), "student": str(out)}
    for old in ("results.json", "minutes.txt"):  # a new run: no figures of an older student
        (args.work / "eval" / old).unlink(missing_ok=True)
    table = evaluate(models, shared, args.work / "eval", args.heldout_limit)
    fidelity = english_fidelity(models, shared)
    cols = ["tatoeba", "cross_model", "heldout", *[f"sts_{k}" for k in STS], "english_cosine"]
    rows = {
        name: {
            "tatoeba": table[name]["tatoeba"]["mean"],
            "cross_model": table[name]["tatoeba-cross"]["mean"],
            "heldout": table[name]["translation"]["mean"],
            **{f"sts_{k}": table[name]["sts"][k] for k in STS},
            "english_cosine": fidelity[name]["mean_cosine"],
        }
        for name in models
    }
    delta = {c: round(rows["student"][c] - rows["start"][c], 4 if c == "english_cosine" else 2) for c in cols}
    result = saved["result"]
    md = [
        "# The main job (`mlembed distill`, no arguments) and what its student keeps (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: {'yes' if info['native_bf16'] else 'no'} (flags: "
        f"{', '.join(info['cpu_flags'])}); load average at start {', '.join(map(str, info['load_average_1_5_15']))}. "
        f"Command: `mlembed distill {' '.join(args.distill_options)}`.",
        "",
        f"Wall {run['wall_s'] / 60:.1f} min ({result['prep_seconds']:.0f} s preparation, {result['steps']} steps in "
        f"{result['train_seconds']:.0f} s), **peak RSS {run['peak_rss_mb']:,} MB**, shipped: {result['shipped']}. "
        f"Data: {sum(result['pairs_per_language'].values()):,} gettext pairs in {len(result['pairs_per_language'])} "
        "language pairs.",
        "",
        "| dev (held-out gettext pairs) | start | trained |",
        "|---|---:|---:|",
        *[f"| {k} | {result['dev_start'].get(k, '—')} | {v} |" for k, v in result["dev"].items()],
        "",
        "Peak RSS by stage (MB; a stage begins at a log line):",
        "",
        "| stage | peak RSS MB |",
        "|---|---:|",
        *[f"| {k} | {v:,} |" for k, v in run["peak_rss_mb_by_stage"].items()],
        "",
        "## On ordinary sentences (never trained on)",
        "",
        "| model | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
        *[f"| {n} | " + " | ".join(str(r[c]) for c in cols) + " |" for n, r in rows.items()],
        "| student - start | " + " | ".join(f"{delta[c]:+}" for c in cols) + " |",
        "",
        f"Tatoeba: 12 languages; cross-model: non-English by the model, English by the teacher; held-out: NTREX "
        f"translation matching (first {args.heldout_limit} sentences) in languages none of the Tatoeba tests has; "
        "STS: stsb-multi-mt test, Spearman x100; English cosine: to the teacher on STS-b's English.",
    ]
    data = {
        "benchmark": "main_job",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "run": {k: v for k, v in run.items() if k != "output"},
        "result": {k: result[k] for k in ("steps", "train_seconds", "prep_seconds", "shipped", "dev", "dev_start")},
        "rows": rows,
        "student_minus_start": delta,
        "not_below_start": all(v >= 0 for v in delta.values()),
        "output": run["output"],
    }
    write_results("main_job", data, "\n".join(md))


if __name__ == "__main__":
    main()
