"""Training throughput with the teacher cache vs recomputing teacher embeddings every epoch.

Same run, same pairs, same student init, same trainer settings; two variants:
- ``cache``: mlembed's way: teacher embeddings computed once into :class:`TeacherCache` (counted in
  epoch 1), then every epoch reads them from the memory map;
- ``recompute``: the teacher runs inside the training loop, encoding each batch's English side again
  every epoch (what a script without a cache does).

The variants alternate (cache, recompute, then recompute, cache, ...) for ``--repeats`` rounds, each
round with a fresh cache, and each epoch's best time is kept, so load from other jobs hits both alike.
Reports pairs/s per epoch and the ratio cache/recompute on epoch 2 (goal >= 1.3).

    python benchmarks/distill_speed.py --pairs 2000 --epochs 2 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
from _common import machine, require_shared, write_results
from transformers import TrainerCallback


class EpochTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_epoch_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kw):
        self.times.append(time.perf_counter() - self._t)


def make_recompute_collator(student: Any, teacher: Any):
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    @dataclass
    class TeacherInTheLoop(SentenceTransformerDataCollator):
        def __call__(self, features):
            batch = super().__call__(features)
            english = [f["english"] for f in features]
            batch["label"] = torch.from_numpy(teacher.encode(english, batch_size=len(english), convert_to_numpy=True))
            return batch

    return TeacherInTheLoop(preprocess_fn=student.preprocess)


def train(variant: str, pairs: list, teacher: Any, epochs: int, batch_size: int, workdir: str) -> dict:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from mlembed.distill.collator import TeacherTargetCollator
    from mlembed.models import load_model, teacher_path
    from mlembed.teacher_cache import TeacherCache

    student = load_model(teacher_path())
    student.max_seq_length = 128
    english = [p.src for p in pairs]
    data = {"english": english, "non_english": [p.tgt for p in pairs]}
    t0 = time.perf_counter()
    if variant == "cache":
        cache = TeacherCache(workdir, teacher)
        data["teacher_row"] = cache.rows(english, show_progress=False).tolist()
        collator = TeacherTargetCollator(preprocess_fn=student.preprocess, targets=cache.vectors())
    else:
        collator = make_recompute_collator(student, teacher)
    prep = time.perf_counter() - t0
    timer = EpochTimer()
    args = SentenceTransformerTrainingArguments(
        output_dir=f"{workdir}/{variant}",
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=1e-4,
        save_strategy="no",
        report_to="none",
        seed=1,
        data_seed=1,
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=10_000,
    )
    trainer = SentenceTransformerTrainer(
        model=student,
        args=args,
        train_dataset=Dataset.from_dict(data),
        loss=losses.MSELoss(student),
        data_collator=collator,
        callbacks=[timer],
    )
    trainer.train()
    epoch_times = [timer.times[0] + prep] + timer.times[1:]
    return {
        "epoch_seconds": [round(t, 2) for t in epoch_times],
        "pairs_per_second": [round(len(pairs) / t, 2) for t in epoch_times],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; best epoch time kept")
    args = parser.parse_args()
    shared = require_shared()

    from mlembed.data import read_pairs
    from mlembed.distill.sampling import balanced_sample
    from mlembed.models import load_model

    stream = read_pairs(f"tsv:{shared}/tatoeba-challenge", langs=["de", "fr", "es", "ru"])
    pairs = balanced_sample(stream, max_pairs=args.pairs, seed=0)
    teacher = load_model("minilm-en")
    rounds: dict[str, list[dict]] = {"cache": [], "recompute": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for variant in ("cache", "recompute")[:: 1 if r % 2 == 0 else -1]:
                rounds[variant].append(train(variant, pairs, teacher, args.epochs, args.batch_size, f"{tmp}/round{r}"))
                print(r, variant, rounds[variant][-1], flush=True)
    results = {}
    for variant, runs in rounds.items():
        best = [min(run["epoch_seconds"][e] for run in runs) for e in range(args.epochs)]
        results[variant] = {
            "epoch_seconds": best,
            "pairs_per_second": [round(len(pairs) / t, 2) for t in best],
            "rounds": runs,
        }
    last = args.epochs - 1
    ratio = results["cache"]["pairs_per_second"][last] / results["recompute"]["pairs_per_second"][last]
    total = sum(results["recompute"]["epoch_seconds"]) / sum(results["cache"]["epoch_seconds"])
    data = {
        "benchmark": "distill_speed",
        "pairs": len(pairs),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "data": "tatoeba-challenge de/fr/es/ru",
        "machine": machine(),
        "results": results,
        f"ratio_epoch{args.epochs}": round(ratio, 3),
        "ratio_total": round(total, 3),
    }
    rows = "\n".join(
        f"| {v} | " + " | ".join(f"{p:.1f}" for p in r["pairs_per_second"]) + " |" for v, r in results.items()
    )
    md = (
        f"# Distillation throughput: teacher cache vs recomputing teacher embeddings\n\n"
        f"{len(pairs):,} pairs (tatoeba-challenge de/fr/es/ru), batch {args.batch_size}, {args.epochs} epochs, "
        f"student = teacher copy, {machine()['cpu_count']} CPU cores, {args.repeats} alternating rounds, best time per epoch. "
        f"Epoch 1 of `cache` includes filling the cache.\n\n"
        f"| variant | " + " | ".join(f"epoch {i + 1} pairs/s" for i in range(args.epochs)) + " |\n"
        "|---|" + "---:|" * args.epochs + "\n" + rows + "\n\n"
        f"**cache / recompute on epoch {args.epochs}: {ratio:.2f}x** (goal >= 1.3); whole run: {total:.2f}x.\n\n"
        f"Command: `python benchmarks/distill_speed.py --pairs {args.pairs} --epochs {args.epochs} "
        f"--batch-size {args.batch_size} --repeats {args.repeats}`\n"
    )
    write_results("distill_speed", data, md)


if __name__ == "__main__":
    main()
