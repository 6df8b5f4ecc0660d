"""The e5 student with a frozen encoder: how far a head alone carries multilingual-e5-small into the teacher's space.

``distill_quality`` measured that training the e5 encoder toward the teacher (25 min, 619 steps) buys
cross-model retrieval (+3.8) and English fidelity (+0.06 cosine) but costs what the encoder knew: STS en
82.2 -> 78.0, held-out languages 92.5 -> 86.4. This benchmark asks the other way round: keep the encoder
as it is and fit only a head on its (cached) sentence vectors, where every minute goes into encoding
more pairs rather than into backward passes. Rows, side by side in one run, same data:

- ``map-4k``: the least-squares linear map on 4,000 pairs (``distill``'s mapped start today);
- ``map-all``: the same map fitted on every pair encoded (``--pairs``);
- ``mlp``: that map plus a residual MLP (384 -> 1536 -> 384, GELU), trained on the cached vectors to the
  teacher's normalised targets (MSE), early-stopped on 5 % of the pairs.

Training data as in ``distill_quality`` (tatoeba-challenge + gettext:system, the 12 Tatoeba languages,
decontaminated against ../shared/data/tatoeba; NTREX is never trained on). Evaluation as there: Tatoeba,
cross-model Tatoeba (English by the teacher), STS, held-out NTREX languages, English fidelity.

    python benchmarks/e5_head.py --pairs 20000
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results
from _distill_eval import HELDOUT, LANGS, STS, score_table


class HeadModel:
    """A frozen base model's vectors (from a shared cache) through a head, L2-normalised: an Encoder."""

    def __init__(self, base_cache, head):
        self.base, self.head = base_cache, head

    def get_embedding_dimension(self) -> int:
        return 384

    def encode(self, sentences, batch_size: int = 64, show_progress_bar: bool = False, **_) -> np.ndarray:
        y = self.head(self.base.encode(list(sentences)))
        return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def training_pairs(shared: Path, n: int, seed: int = 42) -> list:
    from mlembed.data import read_pairs
    from mlembed.data.cleaning import CleanOptions
    from mlembed.distill.sampling import balanced_sample

    clean = CleanOptions(decontaminate=(str(shared / "tatoeba"),))
    pairs = []
    for spec in (f"tsv:{shared}/tatoeba-challenge", "gettext:system"):
        pairs += balanced_sample(read_pairs(spec, langs=LANGS, clean=clean), max_pairs=n // 2, seed=seed)
    random.Random(seed).shuffle(pairs)
    return pairs


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    w0: np.ndarray,
    b0: np.ndarray,
    groups: np.ndarray,
    seed: int = 0,
    epochs: int = 60,
    hidden: int = 1536,
) -> tuple[object, dict]:
    """Residual MLP head ``x @ W + b + MLP(x)`` (W, b start at the least-squares map; MLP's last layer at 0)
    trained with MSE between its normalised output and ``y``; early-stopped on the 5 % of pair groups held out."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(np.unique(groups), size=max(1, len(np.unique(groups)) // 20), replace=False).tolist())
    val = np.array([g in held for g in groups])
    lin = torch.nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w0.T.copy()))
        lin.bias.copy_(torch.from_numpy(b0))
    mlp = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden),
        torch.nn.GELU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(hidden, y.shape[1]),
    )
    torch.nn.init.zeros_(mlp[-1].weight)
    torch.nn.init.zeros_(mlp[-1].bias)
    params = list(lin.parameters()) + list(mlp.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x[~val]), torch.from_numpy(y[~val])
    xv, yv = torch.from_numpy(x[val]), torch.from_numpy(y[val])

    def forward(inp):
        return torch.nn.functional.normalize(lin(inp) + mlp(inp), dim=-1)

    best, best_state, curve, patience = float("inf"), None, [], 0
    for _ in range(epochs):
        lin.train()
        mlp.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(order), 256):
            idx = order[start : start + 256]
            loss = ((forward(xt[idx]) - yt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        lin.eval()
        mlp.eval()
        with torch.no_grad():
            v = float(((forward(xv) - yv) ** 2).mean())
        curve.append(round(v * 100, 5))
        if v < best - 1e-7:
            best, patience = v, 0
            best_state = (
                {k: t.clone() for k, t in lin.state_dict().items()},
                {k: t.clone() for k, t in mlp.state_dict().items()},
            )
        else:
            patience += 1
            if patience >= 5:
                break
    lin.load_state_dict(best_state[0])
    mlp.load_state_dict(best_state[1])

    def head(inp: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(np.asarray(inp, dtype=np.float32))
            return (lin(t) + mlp(t)).numpy()

    return head, {"epochs": len(curve), "val_mse_x100": curve, "best_val_mse_x100": round(best * 100, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-e5-head"), help="cached vectors")
    parser.add_argument("--pairs", type=int, default=20000, help="training pairs encoded for the heads")
    parser.add_argument("--heldout-limit", type=int, default=500)
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))
    args.work.mkdir(parents=True, exist_ok=True)
    info = machine()

    from mlembed.distill.head import fit_linear_map
    from mlembed.encoding import encode
    from mlembed.evaluation import EmbeddingCache, parse_task
    from mlembed.evaluation import evaluate as run_tasks
    from mlembed.models import load_model

    t0 = time.time()
    pairs = training_pairs(shared, args.pairs)
    teacher = load_model("minilm-en")
    feats = args.work / f"train-{args.pairs}.npz"
    if feats.exists():
        z = np.load(feats)
        en, xx, tgt, enc_s = z["en"], z["xx"], z["tgt"], float(z["seconds"])
    else:
        tgt = encode([p.src for p in pairs], teacher, precision="fp32")
        base = load_model("e5-small")
        s0 = time.time()
        en = encode([p.src for p in pairs], base, precision="fp32")
        xx = encode([p.tgt for p in pairs], base, precision="fp32")
        enc_s = time.time() - s0
        np.savez(feats, en=en, xx=xx, tgt=tgt, seconds=enc_s)
    print(f"{len(pairs)} pairs; e5 encoded both sides in {enc_s:.0f} s ({2 * len(pairs) / enc_s:.0f} sentences/s)")

    n = len(pairs)
    x_all, y_all = np.concatenate([en, xx]), np.concatenate([tgt, tgt])
    heads, fits = {}, {}
    k = min(4000, n)
    pick = np.array(random.Random(42).sample(range(n), k))
    w, b = fit_linear_map(np.concatenate([en[pick], xx[pick]]), np.concatenate([tgt[pick], tgt[pick]]))
    heads["map-4k"] = lambda v, w=w, b=b: v @ w + b
    w, b = fit_linear_map(x_all, y_all)
    heads[f"map-{n // 1000}k"] = lambda v, w=w, b=b: v @ w + b
    s0 = time.time()
    heads["mlp"], fits["mlp"] = fit_mlp(x_all, y_all, w, b, groups=np.concatenate([np.arange(n), np.arange(n)]))
    fits["mlp"]["seconds"] = round(time.time() - s0, 1)
    print(f"mlp head: {fits['mlp']}")

    base_cache = EmbeddingCache(load_model("e5-small"), name="e5-small")
    teacher_cache = EmbeddingCache(teacher, name="teacher")
    models = {name: HeadModel(base_cache, h) for name, h in heads.items()}
    caches = {"teacher": teacher_cache}
    tasks = [
        parse_task(f"tatoeba:{shared}/tatoeba"),
        parse_task(f"sts:{shared}/stsb-multi-mt:{','.join(STS)}:test"),
        parse_task(f"translation:ntrex:{shared}/ntrex128:{','.join(HELDOUT)}", limit=args.heldout_limit),
    ]
    results = run_tasks({**models, "teacher": "minilm-en"}, tasks, caches=caches)
    results += run_tasks(models, [parse_task(f"tatoeba:{shared}/tatoeba", english=teacher_cache)], caches=caches)
    table: dict[str, dict] = {}
    for name, r in results:
        table.setdefault(name, {})[r.task] = {
            "mean": round(r.main_score, 2),
            **{k: round(v, 2) for k, v in r.per_language.items()},
        }

    from mlembed.evaluation.sts import read_stsb_multi_mt

    sts_en = read_stsb_multi_mt(shared / "stsb-multi-mt", "en", "test")
    english = sorted(set(sts_en.sentence1) | set(sts_en.sentence2))
    t_en = teacher_cache.unit(english)
    fidelity = {name: round(float((m.encode(english) * t_en).sum(1).mean()), 4) for name, m in models.items()}

    tatoeba = {m: t["tatoeba"] for m, t in table.items()}
    cross = {m: t["tatoeba-cross"] for m, t in table.items() if "tatoeba-cross" in t}
    sts = {m: t["sts"] for m, t in table.items()}
    held = {m: t["translation"] for m, t in table.items()}
    summary = [
        f"| {m} | {tatoeba[m]['mean']:.1f} | {cross[m]['mean']:.1f} | {cross[m]['mean'] - tatoeba[m]['mean']:+.1f} | "
        f"{sts[m]['en']:.1f} | {sts[m]['mean']:.1f} | {held[m]['mean']:.1f} | {fidelity[m]} |"
        for m in models
    ]
    md = [
        "# e5 student with a frozen encoder: linear and MLP heads into the teacher's space (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: **{'yes' if info['native_bf16'] else 'no'}** (fp32); "
        f"load average at start {', '.join(map(str, info['load_average_1_5_15']))}. {n:,} training pairs "
        f"(tatoeba-challenge + gettext:system, 12 Tatoeba languages, decontaminated); multilingual-e5-small encoded "
        f"both sides in {enc_s / 60:.1f} min ({2 * n / enc_s:.0f} sentences/s); the MLP trained in "
        f"{fits['mlp']['seconds']:.0f} s ({fits['mlp']['epochs']} epochs, early-stopped).",
        "",
        "| head | Tatoeba mean | cross-model mean | cross - own | STS en | STS mean | held-out mean | English cosine |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *summary,
        "",
        "## Tatoeba accuracy (%)",
        "",
        score_table(tatoeba, LANGS),
        "",
        "## Cross-model retrieval (non-English by the model, English by the teacher; %)",
        "",
        score_table(cross, LANGS),
        "",
        "## STS Spearman x100",
        "",
        score_table(sts, STS),
        "",
        f"## Held-out languages (NTREX, first {args.heldout_limit}, never trained on; %)",
        "",
        score_table(held, [k for k in held["map-4k"] if k != "mean"]),
        "",
        f"Total {(time.time() - t0) / 60:.0f} min. Command: `python benchmarks/e5_head.py --pairs {args.pairs}`",
    ]
    data = {
        "benchmark": "e5_head",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "pairs": n,
        "encode_seconds": round(enc_s, 1),
        "fits": fits,
        "tatoeba": tatoeba,
        "cross_model": cross,
        "sts": sts,
        "heldout": held,
        "english_cosine": fidelity,
    }
    write_results("e5_head", data, "\n".join(md))


if __name__ == "__main__":
    main()
