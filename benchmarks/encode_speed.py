"""Encoding speed and quality of each backend, against plain ``SentenceTransformer.encode`` (fp32).

Same run, same sentences, rows timed in alternation (``--repeats`` rounds, best of each), so machine
noise hits all alike. Rows:

* ``sentence-transformers fp32`` -- ``SentenceTransformer.encode(sentences)`` with its defaults (batch
  32, sorted by length): the reference every ratio and cosine is taken against;
* ``mlembed torch`` -- :func:`mlembed.encoding.encode` on sentence-transformers (precision ``auto``:
  bf16 autocast where the CPU has native bf16, else fp32; sentences sorted by token length, each forward
  pass at most 2,048 padded tokens);
* ``mlembed onnx`` / ``onnx-int8`` / ``openvino`` / ``openvino-int8`` (and ``openvino bf16`` where the CPU
  has native bf16) -- :mod:`mlembed.backends`, the same chunks on ONNX Runtime or OpenVINO;
* ``... one batch at a time`` -- the same OpenVINO engine with the chunks handed over one by one, each run
  to its end before the next is tokenized (mlembed before its request queue): what the queue
  (:meth:`mlembed.backends.runtime.ExportedModel.encode_chunks`) gains;
* ``auto`` is not a row of its own: the table marks the backend ``auto`` chose on this CPU (its cached
  probe, run here first when needed), and the JSON keeps the probe's own figures.

Speed on short sentences (Tatoeba test sentences of every language) and long ones (NTREX-128).
Quality: min and mean cosine to the reference on both sets, Tatoeba accuracy (deu, cmn, fra, rus;
500 pairs each, both directions) and STS-B en Spearman, as deltas to the reference; and the RSS the
engine added when it was built. Models: the teacher (all-MiniLM-L6-v2) and a student distilled by
``mlembed distill`` (``--student``; multilingual-e5-small's architecture). The CPU's bf16/VNNI/AMX flags
are recorded.

    python benchmarks/encode_speed.py --student /tmp/mlembed-distill-quality/e5-student
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, require_shared, write_results

DEFAULT_STUDENT = Path("/tmp/mlembed-distill-quality/e5-student")  # where distill_quality.py saves its student


class OneAtATime:
    """An exported engine without its request queue: :func:`mlembed.encoding.encode` then hands it the token-budget
    chunks one by one, and its model is compiled for one batch at a time (``LATENCY``)."""

    def __init__(self, model: Any):
        self._model = model

    def __getattr__(self, name: str) -> Any:
        if name == "encode_chunks":
            raise AttributeError(name)
        return getattr(self._model, name)


def rss_mb() -> float:
    """This process's resident set now, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


TATOEBA_LANGS = "deu,cmn,fra,rus"


def cpu_flags() -> dict[str, bool]:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    wanted = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile"]
    return {f: f in flags for f in wanted}


def read_sets(shared: Path, n: int) -> dict[str, list[str]]:
    short: list[str] = []
    for path in sorted((shared / "tatoeba").glob("tatoeba.*-eng.*")):
        short += [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    long: list[str] = []
    for path in sorted((shared / "ntrex128").glob("newstest2019-*.txt")):
        long += [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    rng = np.random.default_rng(0)
    return {
        name: [texts[i] for i in rng.permutation(len(texts))[:n]] for name, texts in (("short", short), ("long", long))
    }


def quality(encoder: Any, shared: Path) -> dict[str, float]:
    from mlembed.evaluation import evaluate, parse_task

    tasks = [
        parse_task(f"tatoeba:{shared / 'tatoeba'}:{TATOEBA_LANGS}", limit=500),
        parse_task(f"sts:{shared / 'stsb-multi-mt'}:en:test"),
    ]
    results = evaluate({"m": encoder}, tasks, show_progress=False)
    out = {f"tatoeba {k}": v for k, v in results[0][1].per_language.items()}
    out["STS en"] = results[1][1].main_score
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000, help="per set (short and long) [%(default)s]")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", action="append", help="repeatable [minilm-en and --student]")
    parser.add_argument(
        "--student", default=str(DEFAULT_STUDENT), help="a student saved by mlembed distill [%(default)s]"
    )
    args = parser.parse_args()
    shared = require_shared()
    from sentence_transformers import SentenceTransformer

    from mlembed.backends import choose_backend, load_backend
    from mlembed.backends.probe import probe_key
    from mlembed.encoding import cpu_has_native_bf16, encode, resolve_precision
    from mlembed.files import cache_root
    from mlembed.models import load_model, resolve_model_path

    names = args.model or ["minilm-en"] + ([args.student] if Path(args.student).is_dir() else [])
    sets = read_sets(shared, args.sentences)
    results: dict[str, Any] = {}
    for name in names:
        plain = SentenceTransformer(resolve_model_path(name), device="cpu")
        ours = load_model(name)
        chosen = choose_backend(ours)
        key = probe_key(ours, resolve_precision("auto"))
        verdict = json.loads((cache_root() / "backends.json").read_text()).get(key, {})
        encoders: dict[str, Any] = {"sentence-transformers fp32": plain, "mlembed torch": ours}
        rss_added: dict[str, float] = {}
        variants = [("onnx", "onnx", "auto"), ("onnx-int8", "onnx-int8", "auto")]
        variants += [("openvino", "openvino", "fp32"), ("openvino-int8", "openvino-int8", "fp32")]
        if cpu_has_native_bf16():
            variants.append(("openvino bf16", "openvino-bf16", "bf16"))
        for label, backend, precision in variants:
            before = rss_mb()
            encoders[f"mlembed {label}"] = load_backend(ours, backend, precision=precision)
            rss_added[f"mlembed {label}"] = round(rss_mb() - before, 1)
        one_by_one = variants[-1]  # the OpenVINO engine auto favours here: bf16 where native, else int8
        encoders[f"mlembed {one_by_one[0]}, one batch at a time"] = OneAtATime(
            load_backend(ours, one_by_one[1], precision=one_by_one[2])
        )
        rows = {
            label: (lambda texts, m=enc: m.encode(texts)) if enc is plain else (lambda texts, m=enc: encode(texts, m))
            for label, enc in encoders.items()
        }
        for texts in sets.values():  # warm-up
            for run in rows.values():
                run(texts[:64])
        times: dict[str, dict[str, list[float]]] = {s: {r: [] for r in rows} for s in sets}
        vectors: dict[str, dict[str, np.ndarray]] = {s: {} for s in sets}
        for _ in range(args.repeats):
            for set_name, texts in sets.items():
                for label, run in rows.items():
                    t0 = time.perf_counter()
                    vectors[set_name][label] = np.asarray(run(texts), dtype=np.float32)
                    times[set_name][label].append(time.perf_counter() - t0)
        ref_quality = quality(plain, shared)
        model_rows = {}
        for label, encoder in encoders.items():
            row: dict[str, Any] = {"auto": label == f"mlembed {chosen}"}
            for set_name, texts in sets.items():
                best = min(times[set_name][label])
                ref = vectors[set_name]["sentence-transformers fp32"]
                got = vectors[set_name][label]
                cos = np.sum(ref * got, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
                row[set_name] = {
                    "sentences_per_s": round(len(texts) / best, 1),
                    "x_reference": round(min(times[set_name]["sentence-transformers fp32"]) / best, 2),
                    "min_cosine": round(float(cos.min()), 5),
                    "mean_cosine": round(float(cos.mean()), 6),
                }
            if label in rss_added:
                row["rss_added_mb"] = rss_added[label]
            if label != "sentence-transformers fp32":
                q = quality(encoder, shared)
                row["quality_delta"] = {k: round(v - ref_quality[k], 2) for k, v in q.items()}
            model_rows[label] = row
            print(name, label, row, flush=True)
        results[Path(name).name] = {
            "source": name,
            "auto": chosen,
            "probe": verdict,
            "reference_quality": {k: round(v, 2) for k, v in ref_quality.items()},
            "rows": model_rows,
        }
    data = {
        "benchmark": "encode_speed",
        "sentences_per_set": args.sentences,
        "repeats": args.repeats,
        "machine": machine(),
        "cpu_flags": cpu_flags(),
        "precision_auto": resolve_precision("auto"),
        "models": results,
    }
    write_results("encode_speed", data, render(data))


def render(data: dict) -> str:
    m = data["machine"]
    flags = ", ".join(f for f, on in data["cpu_flags"].items() if on) or "none of note"
    lines = [
        "# Encoding: speed and quality of each backend",
        "",
        "Produced by `benchmarks/encode_speed.py` (its docstring gives the method). "
        f"{data['sentences_per_set']:,} sentences per set, best of {data['repeats']} alternating rounds; "
        f"{m['cpu_count']} CPUs, native bf16: {m['native_bf16']} (flags: {flags}); `auto` precision here: "
        f"{data['precision_auto']}. Ratios are to plain `SentenceTransformer.encode` (fp32) in the same run. "
        "**auto** marks the backend `--backend auto` chose on this CPU (its probe: mean cosine >= 0.999 to torch "
        "fp32 on held-out gettext sentences, the fastest that passes). RSS: what building the engine added.",
        "",
    ]
    for name, res in data["models"].items():
        ref = res["reference_quality"]
        keys = list(ref)
        lines += [
            f"## {name}",
            "",
            f"`{res['source']}`. Reference quality (sentence-transformers fp32): "
            + ", ".join(f"{k} {v}" for k, v in ref.items()),
            "",
            "| encoder | short: sent/s | x | long: sent/s | x | min cos | mean cos | RSS MB | "
            + " | ".join(f"Δ {k}" for k in keys)
            + " |",
            "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(keys),
        ]
        for label, row in res["rows"].items():
            s, lg = row["short"], row["long"]
            deltas = row.get("quality_delta")
            cells = [f"{deltas[k]:+.2f}" if deltas else "-" for k in keys]
            name_cell = f"**{label} (auto)**" if row.get("auto") else label
            lines.append(
                f"| {name_cell} | {s['sentences_per_s']} | {s['x_reference']} | {lg['sentences_per_s']} | "
                f"{lg['x_reference']} | {min(s['min_cosine'], lg['min_cosine'])} | "
                f"{min(s['mean_cosine'], lg['mean_cosine'])} | {row.get('rss_added_mb', '-')} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
