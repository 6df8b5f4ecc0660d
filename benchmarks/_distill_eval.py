"""Distillation benchmarks' shared pieces: distill_quality's training data and options, its evaluation
(Tatoeba, cross-model Tatoeba, STS, held-out NTREX), English fidelity to the teacher and its score tables.

Used by ``distill_quality.py``, ``distill_curve.py``, ``distill_recipes.py``, ``e5_head.py``, ``main_job.py``
and ``weak_languages.py``, so that every distillation figure is measured one way.
"""

from __future__ import annotations

import functools
import json
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

LANGS = ["ara", "ces", "cmn", "deu", "fra", "hin", "jpn", "rus", "spa", "tur", "ukr", "vie"]
#: NTREX languages none of the students is distilled on: several scripts and resource levels
HELDOUT = ["afr", "amh", "fil", "hau", "isl", "kaz", "mlt", "swa", "tat", "cym"]
STS = ["en", "de", "zh", "es", "fr", "ru", "ja", "en-de", "en-zh"]


def train(name: str, student: str, work: Path, shared: Path, args, **overrides) -> dict:
    """Distil ``student`` into ``work/name`` with distill_quality's data and options (``args``: its command line;
    ``overrides``: distill options on top), or reuse the run saved there; its result, the benchmark's peak RSS
    so far and the trainer's dev curve."""
    from mlembed.distill import distill
    from mlembed.distill.run_folder import RunFolder, annotate, read_record

    out = work / name
    if (saved := read_record(out)) is not None:
        print(f"{name}: exists, reusing {out}")
        return {
            **saved["result"],
            "peak_rss_mb_so_far": saved.get("benchmark_peak_rss_mb"),
            "log_history": saved.get("log_history", []),
        }
    auto = student == "auto"
    t0 = time.time()
    options = dict(
        keep_work=True,  # the step-0 student and the trainer's dev curve are reported
        data=[f"tsv:{shared}/tatoeba-challenge", "gettext:system"],
        langs=LANGS,
        decontaminate=[str(shared / "tatoeba")],
        output=str(out),
        student=student,
        max_pairs=None,
        max_pairs_per_lang=args.max_pairs_per_lang,
        max_minutes=args.budget_minutes,
        epochs=1,
        batch_size=args.batch_size,
        lr=1e-4 if auto else args.lr,  # None: mlembed's default for the student
        embedding_lr=1e-3 if auto else None,
        head_lr=None if auto else args.head_lr,
        new_tokens=30000,
        max_seq_length=64 if auto else args.max_seq_length,
        eval_pairs=1000,
        eval_steps=args.eval_steps,
        save_steps=args.save_steps,
    )
    options.update(overrides)
    result = distill(resume=RunFolder(out).prepared, **options)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name}: {result.steps} steps, {time.time() - t0:.0f} s wall, peak RSS of this process so far {peak:.0f} MB"
    )
    # the whole benchmark process's peak up to the end of this run, and the dev curve, kept with the run
    saved = annotate(out, benchmark_peak_rss_mb=round(peak), log_history=_log_history(out))
    return {**saved["result"], "peak_rss_mb_so_far": round(peak), "log_history": saved["log_history"]}


def _log_history(out: Path) -> list[dict]:
    """The trainer's dev evaluations (step, dev MSE, dev accuracy) from the last checkpoint's state."""
    states = sorted(
        (out / "_distill" / "checkpoints").glob("checkpoint-*/trainer_state.json"),
        key=lambda p: int(p.parent.name.split("-")[-1]),
    )
    if not states:
        return []
    history = json.loads(states[-1].read_text())["log_history"]
    return [
        {
            "step": h["step"],
            "dev_mse_x100": round(-h["eval_dev_negative_mse"], 4),
            "dev_accuracy": round(100 * h["eval_dev_mean_accuracy"], 2),
        }
        for h in history
        if "eval_dev_negative_mse" in h
    ]


def evaluate(models: dict[str, str], shared: Path, out: Path, heldout_limit: int) -> dict:
    """Tatoeba, cross-model Tatoeba (English by the teacher), STS and held-out NTREX for every model."""
    from mlembed.evaluation import EmbeddingCache, parse_task
    from mlembed.evaluation import evaluate as run_tasks
    from mlembed.evaluation.report import read_results, write_report
    from mlembed.models import load_model

    results = read_results(out / "results.json") if (out / "results.json").exists() else []
    todo = {n: m for n, m in models.items() if n not in {name for name, _ in results}}
    if todo:  # an interrupted benchmark keeps its finished evaluation; models added later are evaluated alone
        t0 = time.time()
        teacher = EmbeddingCache(load_model("minilm-en"), name="teacher")
        tasks = [
            parse_task(f"tatoeba:{shared}/tatoeba"),
            parse_task(f"sts:{shared}/stsb-multi-mt:{','.join(STS)}:test"),
            parse_task(f"translation:ntrex:{shared}/ntrex128:{','.join(HELDOUT)}", limit=heldout_limit),
        ]
        caches = {"teacher": teacher}
        results += run_tasks(todo, tasks, caches=caches)
        same_dim = {n: m for n, m in todo.items() if n != "muse"}  # mUSE's 512-d vectors cannot meet the teacher's
        results += run_tasks(same_dim, [parse_task(f"tatoeba:{shared}/tatoeba", english=teacher)], caches=caches)
        write_report(results, out, command="benchmarks/distill_quality.py (evaluation stage)")
        before = float((out / "minutes.txt").read_text()) if (out / "minutes.txt").exists() else 0.0
        (out / "minutes.txt").write_text(f"{before + (time.time() - t0) / 60:.1f}\n")
    table: dict[str, dict] = {}
    for name, r in results:
        table.setdefault(name, {})[r.task] = {
            "mean": round(r.main_score, 2),
            **{k: round(v, 2) for k, v in r.per_language.items()},
        }
    return table


@functools.lru_cache(maxsize=1)
def _teacher_english(shared: Path) -> tuple[list[str], np.ndarray]:
    """The STS-b test English sentences and their teacher vectors, encoded once per benchmark run."""
    from mlembed.encoding import encode
    from mlembed.evaluation.sts import read_stsb_multi_mt

    sts = read_stsb_multi_mt(shared / "stsb-multi-mt", "en", "test")
    sentences = sorted(set(sts.sentence1) | set(sts.sentence2))
    return sentences, encode(sentences, "minilm-en")


def english_fidelity(students: dict[str, str], shared: Path) -> dict[str, dict]:
    """MSE x100 and cosine between each model's and the teacher's embeddings of English sentences never
    trained on (the teacher encodes them once for all models)."""
    import numpy as np

    from mlembed.encoding import encode

    sentences, t = _teacher_english(shared)
    out = {}
    for name, path in students.items():
        s = encode(sentences, path)
        cos = (t * s).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(s, axis=1)
        out[name] = {
            "sentences": len(sentences),
            "mse_x100": round(float(((t - s) ** 2).mean() * 100), 4),
            "mean_cosine": round(float(cos.mean()), 4),
        }
    return out


def score_table(rows: dict[str, dict], cols: list[str], bold: str = "mean") -> str:
    """A Markdown table of scores: a row per model, a column per key of ``cols`` (``—`` where a row lacks it, one
    decimal), then ``bold`` (the mean) in bold."""
    head = "| model | " + " | ".join(cols) + f" | {bold} |\n|---|" + "---:|" * (len(cols) + 1)
    body = [
        f"| {m} | " + " | ".join(f"{r[c]:.1f}" if c in r else "—" for c in cols) + f" | **{r[bold]:.1f}** |"
        for m, r in rows.items()
    ]
    return "\n".join([head, *body])
