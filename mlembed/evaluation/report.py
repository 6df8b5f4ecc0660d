"""Writing evaluation results: ``results.json`` (MTEB-like entries), ``results.md`` tables, PNG charts.

``results.json`` holds one entry per model x task x language key (task name, spec, split, language,
main metric, main score and every metric), plus one ``mean`` entry per model x task.  The Markdown
has one table per task: models as rows, languages as columns, the mean last.  Charts are per-language
grouped bars (one colour per model), one PNG per task, drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlembed.evaluation.base import TaskResult
from mlembed.files import atomic_open, atomic_path

Results = Sequence[tuple[str, TaskResult]]


def result_entries(results: Results) -> list[dict[str, Any]]:
    """Flatten results to one dict per model x task x language (and a ``mean`` row per model x task).

    Example:
        >>> r = TaskResult("sts", "sts:D:en", "test", "spearman", {"en": {"spearman": 80.0, "pearson": 79.0}})
        >>> result_entries([("m", r)])[0]["main_score"]
        80.0
    """
    entries = []
    for model, r in results:
        base = {"model": model, "task": r.task, "spec": r.spec, "split": r.split, "main_metric": r.main_metric}
        for lang, scores in r.scores.items():
            entries.append({**base, "language": lang, "main_score": scores[r.main_metric], "scores": scores})
        entries.append(
            {**base, "language": "mean", "main_score": r.main_score, "scores": {r.main_metric: r.main_score}}
        )
    return entries


def _tables(
    results: Results,
) -> dict[str, tuple[str, list[str], dict[str, dict[str, float]], dict[str, float], TaskResult]]:
    """Per task spec: (title, language keys, {model: {lang: score}}, {model: mean}, one result for metadata)."""
    tables: dict[str, Any] = {}
    for model, r in results:
        title = r.spec if r.spec.startswith(f"{r.task}:") else f"{r.task}: {r.spec}"
        title, langs, rows, means, _ = tables.setdefault(r.spec, (title, [], {}, {}, r))
        for lang in r.scores:
            if lang not in langs:
                langs.append(lang)
        rows[model] = r.per_language
        means[model] = r.main_score
    return tables


def markdown(results: Results, command: str | None = None) -> str:
    """Markdown tables, one per task: models as rows, languages as columns, mean last.

    Example:
        >>> r = TaskResult("sts", "sts:D:en", "test", "spearman", {"en": {"spearman": 80.0}})
        >>> print(markdown([("m", r)]).splitlines()[8])
        | m | 80.0 | 80.0 |
    """
    lines = ["# Evaluation results", ""]
    if command:
        lines += ["```", command, "```", ""]
    for title, langs, rows, means, r in _tables(results).values():
        note = " (lower is better)" if r.metadata.get("lower_is_better") else ""
        lines += [f"## {title}", "", f"{r.main_metric}{note}, split {r.split}", ""]
        lines.append("| model | " + " | ".join(langs) + " | mean |")
        lines.append("|---|" + "---:|" * (len(langs) + 1))
        for model, per_lang in rows.items():
            cells = [f"{per_lang[lang]:.1f}" if lang in per_lang else "" for lang in langs]
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {means[model]:.1f} |")
        extra = {k: v for k, v in r.metadata.items() if k in ("threshold_note", "similarity", "distractors")}
        if extra:
            lines += [""] + [f"- {k}: {v}" for k, v in extra.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def chart(
    title: str,
    langs: list[str],
    rows: dict[str, dict[str, float]],
    means: dict[str, float],
    metric: str,
    path: str | os.PathLike,
) -> None:
    """One grouped bar chart: languages (and ``mean``) on x, one bar per model, values printed on bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = langs + ["mean"]
    models = list(rows)
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(min(11.0, 3.0 + 0.32 * len(keys) * max(2, len(models))), 4.6), dpi=150)
    x = np.arange(len(keys))
    for i, model in enumerate(models):
        values = [rows[model].get(k, np.nan) for k in langs] + [means[model]]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=model)
        ax.bar_label(bars, labels=[f"{v:.0f}" if np.isfinite(v) else "" for v in values], fontsize=7, padding=1)
    ax.set_xticks(x, keys, fontsize=9)
    ax.set_ylabel(metric, fontsize=10)
    ax.set_title(title, fontsize=11, pad=24)
    ax.axvline(len(langs) - 0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.legend(fontsize=9, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(models))
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(y=0.08)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "task"


def read_results(path: str | os.PathLike) -> list[tuple[str, TaskResult]]:
    """Read a ``results.json`` back into ``(model, TaskResult)`` pairs (to redraw or merge reports).

    Example:
        >>> import tempfile
        >>> r = TaskResult("sts", "sts:D:en", "test", "spearman", {"en": {"spearman": 80.0}}, {"pairs": 3})
        >>> out = tempfile.mkdtemp(); _ = write_report([("m", r)], out)
        >>> read_results(out + "/results.json") == [("m", r)]
        True
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    results: dict[tuple[str, str], TaskResult] = {}
    for meta in data["metadata"]:
        meta = dict(meta)
        model, task, spec = meta.pop("model"), meta.pop("task"), meta.pop("spec")
        results[(model, spec)] = TaskResult(task, spec, "", "", {}, meta)
    for e in data["results"]:
        r = results[(e["model"], e["spec"])]
        r.split, r.main_metric = e["split"], e["main_metric"]
        if e["language"] != "mean":
            r.scores[e["language"]] = e["scores"]
    return [(model, r) for (model, _), r in results.items()]


def write_report(
    results: Results,
    output: str | os.PathLike,
    command: str | None = None,
    extra: dict | None = None,
    charts: bool = True,
) -> list[Path]:
    """Write ``results.json``, ``results.md`` and (``charts``) one ``TASK.png`` per task under ``output``; return the paths.

    Example:
        >>> import tempfile
        >>> r = TaskResult("sts", "sts:D:en", "test", "spearman", {"en": {"spearman": 80.0}})
        >>> [p.name for p in write_report([("m", r)], tempfile.mkdtemp())]
        ['results.json', 'results.md', 'sts_D_en.png']
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        **(extra or {}),
        "results": result_entries(results),
        "metadata": [{"model": m, "task": r.task, "spec": r.spec, **r.metadata} for m, r in results],
    }
    paths = [output / "results.json", output / "results.md"]
    with atomic_open(paths[0]) as fh:
        json.dump(payload, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    with atomic_open(paths[1]) as fh:
        fh.write(markdown(results, command))
    for spec, (title, langs, rows, means, r) in (_tables(results) if charts else {}).items():
        png = output / f"{_slug(spec)}.png"
        chart(
            title,
            langs,
            rows,
            means,
            r.main_metric + (" (lower is better)" if r.metadata.get("lower_is_better") else ""),
            png,
        )
        paths.append(png)
    return paths
