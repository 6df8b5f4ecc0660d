"""Does a change leave distillation as it was? The same fixed-step run of the main job by two versions of
mlembed, side by side: dev figures, weights and peak RSS.

    python benchmarks/same_run.py --before 92bd749            # the commit before a refactor vs the work tree

Each version runs ``mlembed distill`` on the main job's default data with a fixed number of steps (``--max-steps 40
--lr-schedule epochs --seed 0 --max-minutes 0``: no time budget, so the load of the machine cannot change the run),
alternately (before, after, before, after, ...: ``--repeats``), with the teacher cache warmed by a first run that
is not counted. The older version is a ``git worktree`` of ``--before`` put first on ``PYTHONPATH``. Reported per
version: the dev figures of the start and of the trained student, whether the saved weights are byte-identical,
and the peak RSS of each run (``wait4``'s ``ru_maxrss`` of that process alone; the versions' medians are
compared). Writes
``results/same_run.{json,md}``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, write_results

FIXED = ["--max-steps", "40", "--lr-schedule", "epochs", "--seed", "0", "--max-minutes", "0", "--no-table"]


def run_distill(source: Path, output: Path, extra: list[str]) -> dict:
    """One ``mlembed distill`` by the mlembed in ``source``: its dev figures, peak RSS and wall time."""
    env = dict(os.environ, PYTHONPATH=str(source), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "mlembed", "distill", "--output", str(output), "--overwrite", *FIXED, *extra]
    t0 = time.time()
    with open(output.parent / f"{output.name}.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd} failed: see {output.parent / f'{output.name}.log'}")
    saved = json.loads((output / "mlembed.json").read_text())
    result = saved["result"]
    return {
        "steps": result["steps"],
        "dev_start": result["dev_start"],
        "dev": result["dev"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "wall_seconds": round(time.time() - t0, 1),
        "imported_from": subprocess.run(
            [sys.executable, "-c", "import mlembed, sys; print(mlembed.__file__)"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision of the earlier version")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each version, alternating [%(default)s]")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mlembed-same-run")
    parser.add_argument("--results", default="same_run")
    parser.add_argument("distill_options", nargs="*", help="more `mlembed distill` options, after --")
    args = parser.parse_args()

    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    before = args.work / "before-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before], check=True)
    try:
        versions = {"before": before, "after": ROOT}
        info = machine()
        print("warming the teacher cache (not counted)")
        run_distill(ROOT, args.work / "warmup", args.distill_options)
        runs: dict[str, list[dict]] = {name: [] for name in versions}
        for i in range(args.repeats):
            for name, source in versions.items():
                out = args.work / f"{name}-{i}"
                runs[name].append(run_distill(source, out, args.distill_options))
                print(name, i, runs[name][-1])
        identical = all(
            filecmp.cmp(args.work / f"before-{i}" / "model.safetensors", args.work / f"{name}-{i}" / "model.safetensors",
                        shallow=False)
            for i in range(args.repeats) for name in versions
        )  # fmt: skip
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    # a run's peak RSS varies by a few % from run to run of the same code (allocator, threads): the median of each
    # version's runs is compared, the range reported
    peak = {name: round(statistics.median(r["peak_rss_mb"] for r in rs)) for name, rs in runs.items()}
    spread = {
        name: [min(r["peak_rss_mb"] for r in rs), max(r["peak_rss_mb"] for r in rs)] for name, rs in runs.items()
    }
    summary = {
        "dev_before": runs["before"][0]["dev"],
        "dev_after": runs["after"][0]["dev"],
        "same_dev": all(r["dev"] == runs["before"][0]["dev"] for rs in runs.values() for r in rs),
        "weights_identical": identical,
        "peak_rss_mb": peak,
        "peak_rss_range_mb": spread,
        "peak_rss_change_pct": round(100 * (peak["after"] / peak["before"] - 1), 2),
    }
    data = {
        "benchmark": "same_run",
        "command": " ".join(["python", "benchmarks/same_run.py", *sys.argv[1:]]),
        "before": args.before,
        "after": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        + " + work tree",
        "distill": "mlembed distill " + " ".join(FIXED + args.distill_options),
        "machine": info,
        "runs": runs,
        "summary": summary,
    }
    keys = list(runs["before"][0]["dev"])
    lines = [
        f"# Same run: `{data['distill']}` by two versions",
        "",
        f"before = `{args.before}`, after = {data['after']}; {args.repeats} runs each, alternating; CPU "
        f"{info['cpu_model']}, {info['cpu_count']} cores, native bf16 {info['native_bf16']}.",
        "",
        "| version | run | steps | " + " | ".join(f"dev {k}" for k in keys) + " | peak RSS (MB) | wall (s) |",
        "|---|---:|---:|" + "---:|" * len(keys) + "---:|---:|",
    ]
    for name, rs in runs.items():
        for i, r in enumerate(rs):
            lines.append(
                f"| {name} | {i} | {r['steps']} | "
                + " | ".join(str(r["dev"][k]) for k in keys)
                + f" | {r['peak_rss_mb']:,} | {r['wall_seconds']} |"
            )
    lines += [
        "",
        f"- dev figures the same in every run: **{summary['same_dev']}**; saved weights byte-identical: "
        f"**{identical}**",
        f"- peak RSS, median of each version's runs: {peak['before']:,} MB before, {peak['after']:,} MB after "
        f"({summary['peak_rss_change_pct']:+.2f} %); range {spread['before'][0]:,}-{spread['before'][1]:,} MB before, "
        f"{spread['after'][0]:,}-{spread['after'][1]:,} MB after",
    ]
    write_results(args.results, data, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
