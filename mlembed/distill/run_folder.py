"""A distillation run's folder, the one place that knows its files.

While a run works, ``OUTPUT/_distill/`` holds what it needs to continue after a kill (:class:`RunFolder`):
``plan.json`` (the :class:`Plan`, written last: its presence means preparation finished), ``train/`` (the
training pairs in their order, a HF dataset), ``dev.jsonl``, ``dev_start.json``, ``pca.npy``, ``student-init/``
and the trainer's ``checkpoints/``. The finished OUTPUT is a plain sentence-transformers folder plus
``mlembed.json`` (plan and :class:`DistillResult`), ``README.md`` (the card) and, for a mapped start,
``start_map.npz``; :func:`read_plan` / :func:`read_saved` read them back for the head, card, server, CLI and
benchmarks. A student trains on short pairs (``--max-seq-length``) and reads at inference as far as its
start does: the plan records both, and the saved folder loads with the inference window.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.files import atomic_open, replace_dir

WORK = "_distill"
SAVED = "mlembed.json"
START_MAP = "start_map.npz"


@dataclass
class Plan:
    """What preparation decided, saved as ``plan.json`` and in ``mlembed.json`` (keys in this order).

    Example:
        >>> plan = Plan.from_dict({"config": {"max_seq_length": 64}, "max_seq_length": {"training": 64,
        ...                        "inference": 512}})
        >>> plan.inference_window, Plan.from_dict({"config": {"max_seq_length": 128}}).inference_window
        (512, 128)
    """

    config: dict[str, Any] = field(default_factory=dict)
    teacher_fingerprint: str = ""
    cache_dir: str = ""
    train_pairs: int = 0
    dev_pairs: int = 0
    pairs_per_language: dict[str, int] = field(default_factory=dict)
    languages: list[str] | None = None
    cleaning: str = ""
    vocab: dict[str, int] = field(default_factory=dict)
    student_map: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    teacher_embeddings_computed: int = 0
    pca: bool = False
    max_seq_length: dict[str, int | None] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """A plan as saved (plans of older versions lack some keys: they take the defaults)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def inference_window(self) -> int:
        """The tokens the student reads at inference (plans written before it was recorded: the training
        length, as those students were saved)."""
        recorded = self.max_seq_length
        if isinstance(recorded, dict) and recorded.get("inference"):
            return int(recorded["inference"])
        return int(self.config["max_seq_length"])


@dataclass
class DistillResult:
    """What a run produced: the model folder and the figures that go on its card."""

    output: str
    steps: int
    train_seconds: float
    prep_seconds: float
    stopped_by_budget: bool
    pairs_per_language: dict[str, int]
    dev: dict[str, float]
    dev_start: dict[str, float] = field(default_factory=dict)
    shipped: str = "trained"
    vocab: dict[str, int] = field(default_factory=dict)
    teacher_embeddings_computed: int = 0
    cleaning: str = ""


@dataclass(frozen=True)
class SavedRun:
    """A finished run as its folder's ``mlembed.json`` records it."""

    plan: Plan
    result: DistillResult


def read_saved(folder: str | Path) -> SavedRun | None:
    """The plan and result of a student mlembed distilled into ``folder``, or None for any other model
    (a name, a hub id, a folder without ``mlembed.json``).

    Example:
        >>> read_saved("minilm-en") is None
        True
    """
    data = read_record(folder) if str(folder) != "auto" else None
    if data is None:
        return None
    names = {f.name for f in fields(DistillResult)}
    result = DistillResult(**{k: v for k, v in data.get("result", {}).items() if k in names})
    return SavedRun(Plan.from_dict(data["plan"]), result)


def read_record(folder: str | Path) -> dict[str, Any] | None:
    """``folder``'s ``mlembed.json`` as saved (plan, result and any keys :func:`annotate` added), or None.

    Example:
        >>> read_record("minilm-en") is None
        True
    """
    saved = Path(folder) / SAVED
    return json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else None


def annotate(folder: str | Path, **extra: Any) -> dict[str, Any]:
    """Add keys beside ``plan`` and ``result`` in ``folder``'s ``mlembed.json`` (a benchmark's own figures of the
    run, e.g. its peak RSS), written atomically; returns the record."""
    record = read_record(folder)
    if record is None:
        raise FileNotFoundError(f"{folder}: no {SAVED} (not a student mlembed distilled)")
    record.update(extra)
    with atomic_open(Path(folder) / SAVED) as fh:
        json.dump(record, fh, indent=1, ensure_ascii=False)
    return record


def read_plan(folder: str | Path) -> Plan | None:
    """The plan of a student mlembed distilled into ``folder``, or None (see :func:`read_saved`)."""
    saved = read_saved(folder)
    return saved.plan if saved else None


def read_start_map(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The map a distilled student started from (``start_map.npz``): weight (student dim x teacher dim), bias."""
    path = Path(folder) / START_MAP
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {START_MAP} (a student distilled without a fitted map)")
    with np.load(path) as arrays:
        return arrays["weight"], arrays["bias"]


def set_saved_window(folder: str | Path, window: int) -> None:
    """Set the ``max_seq_length`` a saved sentence-transformers folder loads with (its
    ``sentence_bert_config.json``), whatever length it was trained at."""
    config = Path(folder) / "sentence_bert_config.json"
    settings = json.loads(config.read_text()) if config.is_file() else {}
    settings["max_seq_length"] = int(window)
    with atomic_open(config) as fh:
        json.dump(settings, fh, indent=2)


class RunFolder:
    """``OUTPUT`` and its work folder ``OUTPUT/_distill``: every file a run reads or writes.

    Example:
        >>> run = RunFolder("/tmp/no-such-student")
        >>> run.work.name, run.prepared, run.holds()
        ('_distill', False, None)
    """

    def __init__(self, output: str | Path):
        self.output = Path(output)
        self.work = self.output / WORK
        self.train_data = self.work / "train"
        self.student_init = self.work / "student-init"
        self.checkpoints = self.work / "checkpoints"
        self._plan = self.work / "plan.json"
        self._dev = self.work / "dev.jsonl"
        self._dev_start = self.work / "dev_start.json"
        self._pca = self.work / "pca.npy"
        self._start_map = self.work / START_MAP

    @property
    def prepared(self) -> bool:
        """Whether preparation finished (a ``_distill/`` without a plan is one that failed: nothing to lose)."""
        return self._plan.exists()

    @property
    def finished(self) -> SavedRun | None:
        """The saved run when OUTPUT holds a finished model and no interrupted run."""
        return None if self.prepared else read_saved(self.output)

    def holds(self) -> str | None:
        """What a new run in OUTPUT would destroy: ``a model``, ``an interrupted run (_distill/)``, ``files``
        or None."""
        if not self.output.is_dir():
            return None
        if not self.prepared and all(p.name == WORK for p in self.output.iterdir()):
            return None
        if (self.output / "modules.json").exists():
            return "a model"
        return "an interrupted run (_distill/)" if self.prepared else "files"

    def start(self) -> None:
        """An empty work folder for a new preparation."""
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)

    def write_plan(self, plan: Plan) -> None:
        """Written last by preparation: its presence means the run can resume."""
        with atomic_open(self._plan) as fh:
            json.dump(plan.to_dict(), fh, indent=1, ensure_ascii=False)

    def read_plan(self) -> Plan:
        return Plan.from_dict(json.loads(self._plan.read_text()))

    def write_dev(self, pairs: list[Any]) -> None:
        """The dev pairs (``Pair`` named tuples), one JSON object a line."""
        with atomic_open(self._dev) as fh:
            for p in pairs:
                fh.write(json.dumps(p._asdict(), ensure_ascii=False) + "\n")

    def read_dev(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self._dev.read_text().splitlines()]

    def write_dev_start(self, figures: dict[str, float]) -> None:
        with atomic_open(self._dev_start) as fh:
            json.dump(figures, fh)

    def read_dev_start(self) -> dict[str, float] | None:
        """The start's dev figures, measured once per run (a resumed run reads them back), or None."""
        return json.loads(self._dev_start.read_text()) if self._dev_start.exists() else None

    def write_pca(self, components: np.ndarray) -> None:
        np.save(self._pca, components)

    def read_pca(self, plan: Plan) -> np.ndarray | None:
        return np.load(self._pca) if plan.pca else None

    def write_start_map(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """The start's fitted map, kept beside the model so the start can be rebuilt (``head.start_model``)."""
        with atomic_open(self._start_map, "wb") as fh:
            np.savez(fh, weight=weight, bias=bias)

    def save(self, student: Any, plan: Plan, result: DistillResult, keep_work: bool) -> None:
        """Save the model into a sibling staging folder, then swap it into OUTPUT by renames: a kill leaves
        either the previous folder or the new model, never a loadable mix of both. The start's folder as
        saved before training is copied when ``result.shipped == "start"``; the work folder moves into the
        new OUTPUT (``keep_work``) or goes."""
        from mlembed.distill.card import model_card

        staging = self.output.parent / f".{self.output.name}.staging"
        if staging.exists():
            shutil.rmtree(staging)
        if result.shipped == "start":  # the untrained start as saved before training: no second model in memory
            shutil.copytree(self.student_init, staging)
        else:
            student.save(str(staging))
        set_saved_window(staging, plan.inference_window)
        (staging / "README.md").write_text(model_card(plan, result), encoding="utf-8")
        (staging / SAVED).write_text(
            json.dumps({"plan": plan.to_dict(), "result": asdict(result)}, indent=1, ensure_ascii=False)
        )
        if self._start_map.exists():
            shutil.copy2(self._start_map, staging / START_MAP)
        if keep_work:
            shutil.move(str(self.work), str(staging / WORK))
        replace_dir(staging, self.output)
