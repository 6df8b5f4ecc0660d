"""Encoding speed and quality of each way to run a model, against plain ``SentenceTransformer.encode``.

Same run, same sentences, rows timed in alternation (``--repeats`` rounds, best of each), so machine
noise hits all alike. Rows:

* ``sentence-transformers fp32`` -- ``SentenceTransformer.encode(sentences)`` with its defaults (batch
  32, sorted by length): the reference every ratio and cosine is taken against;
* ``mlembed`` -- :func:`mlembed.encoding.encode_to_npy`, what ``mlembed encode`` runs: precision
  ``auto`` and the default token budget (sentences sorted by token length, each forward pass at most
  2,048 padded tokens);
* ``mlembed, fixed batches of 64`` -- the same without the token budget (mlembed's earlier default);
* ``mlembed bf16`` -- bf16 autocast, only where the CPU has native bf16 (emulated, it is ~5x slower);
* ``onnxruntime fp32`` and ``onnxruntime int8`` (dynamic, per-channel weights) -- the model's whole
  sentence-transformers forward exported with ``torch.onnx`` and run by ONNX Runtime in the same
  token-budget chunks: candidate backends, measured here before any is offered.

Speed on short sentences (Tatoeba test sentences of every language) and long ones (NTREX-128).
Quality: min and mean cosine to the reference on both sets, Tatoeba accuracy (deu, cmn, fra, rus;
500 pairs each, both directions) and STS-B en Spearman, as deltas to the reference. Models: the
teacher (all-MiniLM-L6-v2) and e5-small (multilingual-e5-small, the distilled students' architecture
and starting point). The CPU's bf16/VNNI/AMX flags are recorded.

    python benchmarks/encode_speed.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, require_shared, write_results

TATOEBA_LANGS = "deu,cmn,fra,rus"


class OnnxEncoder:
    """A sentence-transformers model's forward (transformer, pooling, dense, normalisation) run by ONNX Runtime."""

    def __init__(self, st: Any, path: Path, int8: bool = False):
        import onnxruntime as ort
        import torch

        self.st, self.tokenizer, self.max_seq_length = st, st.tokenizer, st.max_seq_length
        self.prompt = (st.prompts or {}).get(st.default_prompt_name or "", "")
        features = st.tokenize(["a short one", "and a somewhat longer sentence"])
        self.inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]

        class Forward(torch.nn.Module):
            def __init__(self, model: Any, names: list[str]):
                super().__init__()
                self.model, self.names = model, names

            def forward(self, *tensors: Any) -> Any:
                return self.model(dict(zip(self.names, tensors)))["sentence_embedding"]

        fp32 = path.with_suffix(".fp32.onnx")
        axes = {k: {0: "batch", 1: "tokens"} for k in self.inputs} | {"embedding": {0: "batch"}}
        with torch.no_grad():
            torch.onnx.export(
                Forward(st, self.inputs).eval(),
                tuple(features[k] for k in self.inputs),
                str(fp32),
                input_names=self.inputs,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        model_file = fp32
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            model_file = path.with_suffix(".int8.onnx")
            quantize_dynamic(str(fp32), str(model_file), weight_type=QuantType.QInt8, per_channel=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def get_embedding_dimension(self) -> int:
        dim = self.session.get_outputs()[0].shape[-1]
        return dim if isinstance(dim, int) else int(self.st.get_embedding_dimension())

    def encode(self, sentences: list[str], batch_size: int = 32, normalize_embeddings: bool = False, **_: Any):
        out = []
        for i in range(0, len(sentences), batch_size):
            features = self.st.tokenize([self.prompt + s for s in sentences[i : i + batch_size]])
            out.append(self.session.run(None, {k: features[k].numpy() for k in self.inputs})[0])
        vectors = np.concatenate(out).astype(np.float32)
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


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
    parser.add_argument("--model", action="append", help="repeatable [minilm-en, e5-small]")
    args = parser.parse_args()
    shared = require_shared()
    from sentence_transformers import SentenceTransformer

    from mlembed.encoding import cpu_has_native_bf16, encode, encode_to_npy, resolve_precision
    from mlembed.models import load_model, resolve_model_path

    sets = read_sets(shared, args.sentences)
    work = Path(tempfile.mkdtemp())
    results: dict[str, Any] = {}
    for name in args.model or ["minilm-en", "e5-small"]:
        plain = SentenceTransformer(resolve_model_path(name), device="cpu")
        ours = load_model(name)
        rows: dict[str, Any] = {
            "sentence-transformers fp32": lambda texts, m=plain: m.encode(texts),
            "mlembed": lambda texts, m=ours: np.load(
                encode_to_npy(texts, work / "e.npy", m, show_progress=False, count=len(texts))
            ),
            "mlembed, fixed batches of 64": lambda texts, m=ours: encode(texts, m, token_budget=None),
        }
        encoders: dict[str, Any] = {"sentence-transformers fp32": plain, "mlembed": ours}
        if cpu_has_native_bf16():
            rows["mlembed bf16"] = lambda texts, m=ours: encode(texts, m, precision="bf16")
        for label, int8 in (("onnxruntime fp32", False), ("onnxruntime int8", True)):
            onnx = OnnxEncoder(ours, work / f"{name}-{int(int8)}", int8=int8)
            rows[label] = lambda texts, m=onnx: encode(texts, m, precision="fp32")
            encoders[label] = onnx
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
        for label in rows:
            row: dict[str, Any] = {}
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
            if label in encoders and label != "sentence-transformers fp32":
                q = quality(encoders[label], shared)
                row["quality_delta"] = {k: round(v - ref_quality[k], 2) for k, v in q.items()}
            model_rows[label] = row
            print(name, label, row, flush=True)
        results[name] = {"reference_quality": {k: round(v, 2) for k, v in ref_quality.items()}, "rows": model_rows}
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
        "# Encoding: speed and quality of each way to run a model",
        "",
        "Produced by `benchmarks/encode_speed.py` (its docstring gives the method). "
        f"{data['sentences_per_set']:,} sentences per set, best of {data['repeats']} alternating rounds; "
        f"{m['cpu_count']} CPUs, native bf16: {m['native_bf16']} (flags: {flags}); `auto` precision here: "
        f"{data['precision_auto']}. Ratios are to plain `SentenceTransformer.encode` (fp32) in the same run. "
        "`mlembed` is what `mlembed encode` runs; the onnxruntime rows are candidates, not offered by mlembed.",
        "",
    ]
    for name, res in data["models"].items():
        ref = res["reference_quality"]
        keys = list(ref)
        lines += [
            f"## {name}",
            "",
            "Reference quality (sentence-transformers fp32): " + ", ".join(f"{k} {v}" for k, v in ref.items()),
            "",
            "| encoder | short: sent/s | x | long: sent/s | x | min cos | mean cos | "
            + " | ".join(f"Δ {k}" for k in keys)
            + " |",
            "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(keys),
        ]
        for label, row in res["rows"].items():
            s, lg = row["short"], row["long"]
            deltas = row.get("quality_delta")
            cells = [f"{deltas[k]:+.2f}" if deltas else "-" for k in keys]
            lines.append(
                f"| {label} | {s['sentences_per_s']} | {s['x_reference']} | {lg['sentences_per_s']} | "
                f"{lg['x_reference']} | {min(s['min_cosine'], lg['min_cosine'])} | "
                f"{min(s['mean_cosine'], lg['mean_cosine'])} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
