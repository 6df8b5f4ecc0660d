"""`mlembed encode` vs plain `SentenceTransformer.encode`: same model, same 5,000 NTREX sentences, same run.

Both are timed in alternation (``--repeats`` rounds, best of each) so machine noise hits both alike:
- ``sentence-transformers``: ``SentenceTransformer(teacher).encode(sentences, batch_size=64)``;
- ``mlembed``: ``mlembed.encoding.encode_to_npy`` (streamed in chunks to a ``.npy`` file, precision
  ``auto``), i.e. what ``mlembed encode`` runs.

    python benchmarks/encode_speed.py --sentences 5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shared = require_shared()

    from sentence_transformers import SentenceTransformer

    from mlembed.encoding import encode_to_npy, resolve_precision
    from mlembed.models import load_model, teacher_path

    sentences: list[str] = []
    for path in sorted((shared / "ntrex128").glob("newstest2019-ref.*.txt")):
        sentences += path.read_text(encoding="utf-8").splitlines()
        if len(sentences) >= args.sentences:
            break
    sentences = sentences[: args.sentences]
    plain = SentenceTransformer(teacher_path(), device="cpu")
    ours = load_model("minilm-en")
    times: dict[str, list[float]] = {"sentence-transformers": [], "mlembed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ref = plain.encode(sentences, batch_size=64)
            times["sentence-transformers"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = encode_to_npy(sentences, Path(tmp) / "e.npy", ours, batch_size=64, show_progress=False)
            times["mlembed"].append(time.perf_counter() - t0)
            emb = np.load(out)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["sentence-transformers"] / best["mlembed"]
    max_diff = float(np.abs(ref - emb).max())
    data = {
        "benchmark": "encode_speed",
        "sentences": len(sentences),
        "repeats": args.repeats,
        "machine": machine(),
        "precision": resolve_precision("auto"),
        "seconds": times,
        "sentences_per_second": {k: round(len(sentences) / v, 1) for k, v in best.items()},
        "speed_ratio_mlembed_over_st": round(ratio, 3),
        "max_abs_difference": max_diff,
    }
    md = (
        "# Encoding speed: `mlembed encode` vs `SentenceTransformer.encode`\n\n"
        f"{len(sentences):,} NTREX-128 sentences (several languages), teacher all-MiniLM-L6-v2, batch 64, "
        f"best of {args.repeats} alternating rounds, {machine()['cpu_count']} CPU cores, precision chosen by "
        f"`auto`: {resolve_precision('auto')}.\n\n"
        "| encoder | sentences/s |\n|---|---:|\n"
        + "".join(f"| {k} | {len(sentences) / v:.1f} |\n" for k, v in best.items())
        + f"\n**mlembed / sentence-transformers speed: {ratio:.2f}x** (goal >= 1.0); largest difference between "
        f"the two outputs: {max_diff:.1e}.\n\nCommand: `python benchmarks/encode_speed.py --sentences {args.sentences} "
        f"--repeats {args.repeats}`\n"
    )
    write_results("encode_speed", data, md)


if __name__ == "__main__":
    main()
