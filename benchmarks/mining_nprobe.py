"""How many inverted lists the k-NN of mining must probe: F1 and k-NN seconds of ``mlembed mine`` on
mining_e2e's 200k x 200k files with the exact index and with IVF indexes at several ``--nprobe`` (one run).

The sentences are encoded once (``mlembed encode --normalize``, the model and backend given), then every
setting runs ``mlembed mine --src-embeddings --tgt-embeddings`` (so only the k-NN, the margin and the write
differ) with mining_e2e's options: ``--mode max --threshold 0 --k 4 --margin ratio --memory-budget 1G``. F1 x100
at each output's best threshold against the NTREX gold pairs, and the share of the exact search's candidate
pairs (``flat``, fp32) each output also holds, and how many gold pairs are among its candidates at all. A setting is ``INDEX[:OPTION][:centred]``: for an IVF
index the option is ``--nprobe`` (none: the index's own, mlembed's default, :func:`mlembed.faiss_index.nprobe_for`;
FAISS's own default is 1), for ``flat`` it is ``--knn-precision`` (``fp32``, the default, or ``int8``
candidates rescored exactly); ``centred``: an approximate index finds candidates with each side centred by its
own mean (``--centre``) instead of searching the vectors as they are (mlembed's default). A fourth field sets how an
approximate index's neighbourhood means are estimated (``--means``: ``found`` when not given, as the earlier results
here were measured; ``exact``, mine's default since; ``calibrated``: :mod:`mlembed.means`), e.g. ``ivfsq:16::exact``;
its seconds are the ``means`` column.

    python benchmarks/mining_e2e.py ...            # builds the files in /tmp/mlembed-mining-e2e/200000
    python benchmarks/mining_nprobe.py --model student-l6 [--settings flat,ivf:1,ivf:16,ivf,ivfsq:1,ivfsq]
    python benchmarks/mining_nprobe.py --model mlembed-student --results mining_nprobe_full --settings flat,ivf,ivf:128,ivfsq
    python benchmarks/mining_nprobe.py --model /tmp/mining/full --work /tmp/mlembed-mining_nprobe_full --results mining_knn_precision --settings flat:fp32,flat:int8
    python benchmarks/mining_nprobe.py --model mlembed-student --results mining_centring --work /tmp/mlembed-mining_centring --settings flat,ivf,ivf::centred,ivfsq:16,ivfsq:16:centred,ivfsq,ivfsq::centred
    python benchmarks/mining_nprobe.py --model mlembed-student --results mining_means --settings flat,ivfsq,ivfsq:::exact,ivfsq:::calibrated,ivfsq:16,ivfsq:16::exact,ivfsq:16::calibrated,ivfsq:8,ivfsq:8::exact

Writes ``benchmarks/results/RESULTS.{json,md}`` (``--results``, default ``mining_nprobe``); the vectors are kept
in ``--work`` (by default ``/tmp/mlembed-RESULTS``), so give each model its own results name.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import MLEMBED, f1_of, machine, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the encoder (folder or alias)")
    parser.add_argument("--backend", default="openvino-bf16", help="engine of the one encoding [%(default)s]")
    parser.add_argument("--files", type=Path, default=Path("/tmp/mlembed-mining-e2e/200000"), help="mining_e2e's")
    parser.add_argument("--results", default="mining_nprobe", help="results name [%(default)s]")
    parser.add_argument("--work", type=Path, default=None, help="vectors and outputs [/tmp/mlembed-RESULTS]")
    parser.add_argument("--settings", default="flat,ivf:1,ivf:16,ivf,ivfsq:1,ivfsq:16,ivfsq")
    args = parser.parse_args()
    args.work = args.work or Path(f"/tmp/mlembed-{args.results}")
    if not (args.files / "gold.tsv").exists():
        sys.exit(f"{args.files}: no gold.tsv; run benchmarks/mining_e2e.py first, it builds the files")
    args.work.mkdir(parents=True, exist_ok=True)
    gold = dict(line.split("\t") for line in (args.files / "gold.tsv").read_text(encoding="utf-8").splitlines())
    embeddings = {}
    for side in ("en", "xx"):
        npy = args.work / f"{side}.npy"
        if not npy.exists():  # written atomically by mlembed encode: an existing file is complete
            cmd = MLEMBED + ["encode", str(args.files / f"{side}.txt"), "-o", str(npy), "--model", args.model]
            subprocess.run(cmd + ["--backend", args.backend, "--normalize"], check=True)
        embeddings[side] = npy
    rows = []
    for setting in args.settings.split(","):
        index, option, centring, means = (setting.split(":") + ["", "", ""])[:4]
        centred = index != "flat" and centring == "centred"
        means = "—" if index == "flat" else means or "found"
        out = args.work / f"{index}-{option or 'default'}{'-centred' if centred else ''}-{means}.tsv"
        cmd = MLEMBED + ["mine", "--src", str(args.files / "en.txt"), "--tgt", str(args.files / "xx.txt")]
        cmd += ["-o", str(out), "--model", args.model, "--src-embeddings", str(embeddings["en"])]
        cmd += ["--tgt-embeddings", str(embeddings["xx"]), "--mode", "max", "--threshold", "0", "--k", "4"]
        cmd += ["--margin", "ratio", "--index", index, "--memory-budget", "1G", "--workdir", str(out) + ".work"]
        cmd += [] if not option else ["--knn-precision" if index == "flat" else "--nprobe", option]
        cmd += ["--centre"] if centred else []
        cmd += [] if index == "flat" else ["--means", means]
        t0 = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.time() - t0
        stages = next(line for line in done.stdout.splitlines() if line.startswith("seconds per stage:"))
        stage_s = json.loads(stages.split(":", 1)[1])
        knn = stage_s["knn"]
        flat = index == "flat"
        row = {"index": index, "nprobe": "—" if flat else option or "default", "centred": "—" if flat else centred}
        row |= {"knn_precision": (option or "default") if flat else "—", "means": means, "knn_s": knn}
        row |= {"means_s": stage_s.get("means", "—"), "wall_s": round(wall, 1)}
        row.update(f1_of(out, gold))
        row["output"] = str(out)
        print(json.dumps(row), flush=True)
        rows.append(row)
    info = machine()
    exact = next((r for r in rows if r["knn_precision"] == "fp32"), None)
    exact = exact or next((r for r in rows if r["index"] == "flat"), None)
    if exact:
        reference = pairs_of(Path(exact["output"]))
        for row in rows:
            row["exact_pairs"] = round(len(pairs_of(Path(row["output"])) & reference) / max(len(reference), 1), 4)
    cols = ["index", "nprobe", "centred", "knn_precision", "means", "knn_s", "means_s", "f1", "precision", "recall"]
    cols += ["gold_candidates"]
    cols += ["exact_pairs"] if exact else []
    md = [
        "# Mining F1 against the lists the IVF k-NN probes (one run)",
        "",
        f"Produced by `benchmarks/mining_nprobe.py` (its docstring gives the method): mining_e2e's files "
        f"({args.files}), encoded once by `{args.model}` ({args.backend}); {info['cpu_model']}, {info['cpu_count']} CPUs, native bf16: "
        f"{info['native_bf16']} (flags: {', '.join(info.get('cpu_flags', []))}). *default* nprobe: the index's own "
        "(mlembed: 1/16 of its lists, 64 of 1,024 here; FAISS alone: 1); *centred*: the approximate index finds "
        "candidates with each side centred by its own mean (`--centre`), 2k + 4 of them rescored exactly (False: "
        "the vectors as they are, mlembed's default); *exact pairs*: the share of the exact search's candidate "
        "pairs (flat, fp32) the output also holds; *gold candidates*: gold pairs among the output's candidates at any "
        "score; *default* k-NN precision of `flat`: fp32 (float32 products, rescored exactly); *means*: the "
        "approximate index's neighbourhood means from the neighbours found, exact for the rows of every pair that "
        "can score the cut (the ratio margin's default threshold, 1.06) or more, or calibrated on 2,000 exact "
        "rows a side (`--means`, mlembed/means.py). "
        "F1 x100 at the best threshold; Δ against `flat` in fp32 where it ran.",
        "",
        "| " + " | ".join(cols) + (" | Δ F1 vs exact |" if exact else " |"),
        "|---|---|---|---|---|" + "---:|" * (len(cols) - 5 + bool(exact)),
        *[
            "| " + " | ".join(str(r[c]) for c in cols) + (f" | {r['f1'] - exact['f1']:+.2f} |" if exact else " |")
            for r in rows
        ],
    ]
    data = {"benchmark": "mining_nprobe", "machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    write_results(args.results, data | {"rows": rows}, "\n".join(md))


def pairs_of(output: Path) -> set[tuple[str, str]]:
    """The (source, target) pairs of a ``mine`` output (``score<TAB>src<TAB>tgt`` lines)."""
    with output.open(encoding="utf-8") as fh:
        return {tuple(line.rstrip("\n").split("\t")[1:3]) for line in fh}


if __name__ == "__main__":
    main()
