"""The model card (README.md) written into a distilled student's folder."""

from __future__ import annotations

from typing import Any


def model_card(plan: Any, result: Any) -> str:
    """Markdown describing how the student was made (a :class:`~mlembed.distill.run_folder.Plan` and its
    ``DistillResult``): teacher, data, steps, time, dev figures.

    Example:
        >>> from mlembed.distill.run_folder import DistillResult, Plan
        >>> plan = Plan(config={"teacher": "minilm-en", "student": "auto", "data": ["tsv:x.tsv"], "lr": 1e-4,
        ...         "batch_size": 8, "dim": None, "max_seq_length": 128}, train_pairs=2, pairs_per_language={"en-de": 2})
        >>> res = DistillResult("out", 1, 1.0, 1.0, False, {"en-de": 2}, {})
        >>> "en-de" in model_card(plan, res)
        True
    """
    cfg = plan.config
    lines = [
        "---",
        "library_name: sentence-transformers",
        "tags: [sentence-transformers, sentence-similarity, multilingual, knowledge-distillation, mlembed]",
        "---",
        "",
        "# Multilingual student distilled with mlembed",
        "",
        f"Teacher `{cfg['teacher']}` distilled into a multilingual student (student: `{cfg['student']}`) with MSE on "
        "parallel sentences: student(English) and student(translation) both trained toward teacher(English) "
        "(Reimers & Gurevych, EMNLP 2020).",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'model = SentenceTransformer("PATH/TO/THIS/FOLDER")',
        'embeddings = model.encode(["Hello world", "Hallo Welt", "你好，世界"])',
        "```",
        "",
        "## Training",
        "",
        f"- data: {', '.join(f'`{d}`' for d in cfg['data'])}",
        f"- training pairs: {plan.train_pairs:,}; dev pairs: {plan.dev_pairs:,}",
        f"- steps: {result.steps:,} (batch {cfg['batch_size']}, lr {cfg['lr']}, "
        f"{cfg.get('lr_schedule', 'epochs')} schedule, trained at max_seq_length {cfg['max_seq_length']})",
        f"- input window: {plan.inference_window} tokens at inference (trained on pairs cut at "
        f"{cfg['max_seq_length']}, the student reads as far as its start does); longer inputs are refused, "
        "truncated or split as the encoder's `overflow` option says, never cut silently by mlembed",
        f"- time: {result.prep_seconds:.0f} s preparation, {result.train_seconds:.0f} s training"
        + (" (stopped by the time budget)" if result.stopped_by_budget else ""),
    ]
    if cfg.get("dim"):
        lines.append(f"- dimension reduced to {cfg['dim']} by PCA of teacher embeddings (Dense layer, no bias)")
    if plan.vocab:
        v = plan.vocab
        lines.append(
            f"- vocabulary: +{v['added']:,} subwords learned from the training data ({v.get('aligned', 0):,} initialised "
            f"from their English translations, {v['transferred']:,} from the teacher's tokenisation, {v['random']:,} "
            f"random; {v.get('alphabet', 0):,} of them only so that no character of a script seen becomes [UNK]), "
            f"{v['vocab_size']:,} in all"
        )
    if plan.student_map:
        m = plan.student_map
        how = (
            "its vectors centred and rotated onto the teacher's (orthogonal Procrustes)"
            if m.get("method") == "procrustes"
            else "a linear map into the teacher's space fitted by least squares"
        )
        extra = f" and {m['english_sentences']:,} packaged English sentences" if m.get("english_sentences") else ""
        lines.append(
            f"- start: {cfg['student']} with {how} on {m['pairs']:,} pairs{extra} (cosine to the teacher before "
            f"training: {m['english_cosine']} English, {m['translation_cosine']} translations); word embeddings "
            + ("frozen" if cfg.get("freeze_embeddings") else "trained")
            + f", head lr {cfg.get('head_lr')}"
            + (f", bottom {cfg['freeze_layers']} layers frozen" if cfg.get("freeze_layers") else "")
            + (f", anchor {cfg['anchor']} (self-distillation to the start)" if cfg.get("anchor") else "")
        )
    if plan.layers:
        kept = plan.layers
        lines.append(
            f"- layers: {len(kept['kept'])} of the {kept['of']} of `{cfg['student']}` (layers {kept['kept']}), each "
            "sentence of both sides trained toward the full model's own vector of it"
        )
    if cfg.get("contrastive"):
        lines.append(f"- loss: MSE + {cfg['contrastive']} x in-batch contrastive term against the teacher's vectors")
    if cfg.get("merge_start") is not None:
        lines.append(f"- weights: start + {cfg['merge_start']} x (trained - start), averaged after training (WiSE-FT)")
    lines += ["", "| language pair | training pairs |", "|---|---:|"]
    lines += [f"| {lang} | {n:,} |" for lang, n in plan.pairs_per_language.items()]
    if plan.cleaning:
        lines += ["", "## Data cleaning (pairs read and dropped per rule)", "", "```", plan.cleaning, "```"]
    if result.shipped == "start":
        lines += ["", "Training lowered the dev translation accuracy: this folder holds the untrained start."]
    if result.dev:
        start = result.dev_start or {}
        lines += ["", "## Dev figures (held-out pairs)", "", "| metric | start | trained |", "|---|---:|---:|"]
        lines += [f"| {k} | {start.get(k, '—')} | {v} |" for k, v in result.dev.items()]
    return "\n".join(lines) + "\n"
