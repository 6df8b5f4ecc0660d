"""Mining parallel sentences from two collections of documents, in one step: split, identify, dedupe, mine, filter.

Each side's documents (:mod:`mlembed.data.documents`: JSONL with ``id``/``text``, a folder of ``.txt``, a text
file) are cut into sentences; a sentence long enough to judge whose language is not the side's
(:func:`mlembed.langid.in_language`) is set aside as ``wrong_language``; the rest are mined by
:func:`mlembed.mine.mine_files` (which drops repeated lines, so boilerplate repeated across pages is mined once);
mined pairs without words on a side (``no_text``) or whose target copies the source (``copy``) are dropped, as
``mlembed filter`` drops them; then documents that share at least two of the remaining pairs and are each
other's best match are aligned sentence by sentence (:func:`mlembed.aligner.align`: beads 1-1, 1-2, 2-1... and
omissions), and each bead holding a mined pair replaces it, so a sentence that one translator split in two comes
out whole, as a pair of its original text. Every output row names the document and sentence index (``3,4`` for a
bead of two) of both sides.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlembed.data.output import tsv_field
from mlembed.files import DataError, OnBadLine, atomic_open

if TYPE_CHECKING:
    from mlembed.mine import MiningOptions

__all__ = ["DocumentMiningReport", "mine_documents"]

#: documents are matched (and aligned) when they share at least this many mined pairs and are each other's best
MIN_SHARED = 2
#: the output's columns
COLUMNS = ("score", "source", "target", "source_doc", "source_sentence", "target_doc", "target_sentence")


@dataclass
class DocumentMiningReport:
    """What :func:`mine_documents` did: documents and sentences per side, sentences set aside and pairs dropped
    (by reason), pairs written, the threshold and each stage's seconds."""

    documents: dict[str, int] = field(default_factory=dict)
    sentences: dict[str, int] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    set_aside: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    pairs: int = 0
    aligned_documents: int = 0
    threshold: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"{side}: {self.documents[side]} documents, {self.sentences[side]} sentences ({self.languages[side]})"
            + (f", {self.set_aside[side]} not in {self.languages[side]} set aside" if self.set_aside[side] else "")
            for side in ("src", "tgt")
        ]
        lines.append(f"{self.pairs} pairs mined (threshold {self.threshold:g})")
        if self.aligned_documents:
            lines.append(f"  {self.aligned_documents} document pairs matched and aligned sentence by sentence")
        lines += [f"  dropped as {reason}: {n}" for reason, n in sorted(self.dropped.items()) if n]
        return "\n".join(lines)


def _split_side(
    docs: str | os.PathLike,
    lang: str | None,
    out: Path,
    on_bad_line: OnBadLine,
    report: DocumentMiningReport,
    side: str,
) -> Path:
    """Sentences of one side to ``out`` (one a line) and their provenance to ``out``.prov (doc<TAB>index)."""
    from mlembed.data.documents import document_sentences, read_documents
    from mlembed.langid import identify, in_language
    from mlembed.languages import normalize_lang

    documents = list(read_documents(docs, on_bad_line))
    if not documents:
        raise DataError("no documents", docs)
    if lang is None:
        counts = Counter(identify(d.text[:5000]) for d in documents if d.text.strip())
        lang = counts.most_common(1)[0][0] if counts else "en"
    lang = normalize_lang(lang)
    report.documents[side], report.languages[side] = len(documents), lang
    n = 0
    prov = out.with_suffix(".prov")
    with atomic_open(out) as text_fh, atomic_open(prov) as prov_fh:
        for sentence in document_sentences(documents, lang):
            if in_language(sentence.text, lang) is False:
                report.set_aside[side] += 1
                continue
            text_fh.write(sentence.text.replace("\t", " ") + "\n")
            prov_fh.write(
                f"{tsv_field(sentence.doc)}\t{sentence.index}\t{sentence.line}\t{sentence.start}\t{sentence.end}\n"
            )
            n += 1
    if not n:
        raise DataError(f"no sentences in {lang} in these documents", docs)
    report.sentences[side] = n
    return out


def _provenance(text_path: Path, wanted: set[str]) -> dict[str, str]:
    """``(doc, index)`` of the first sentence equal to each of ``wanted`` (streamed: memory grows with ``wanted``)."""
    found: dict[str, tuple[str, int]] = {}
    with open(text_path, encoding="utf-8") as texts, open(text_path.with_suffix(".prov"), encoding="utf-8") as prov:
        for text, where in zip(texts, prov):
            text = text.rstrip("\n")
            if text in wanted and text not in found:
                doc, index = where.rstrip("\n").split("\t")[:2]
                found[text] = (doc, int(index))
    return found


def mine_documents(
    src_docs: str | os.PathLike,
    tgt_docs: str | os.PathLike,
    output: str | os.PathLike,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    model: Any = "e5-small",
    options: MiningOptions | None = None,
    on_bad_line: OnBadLine = "error",
    align_documents: bool = True,
    **file_options: Any,
) -> DocumentMiningReport:
    """Mine translation pairs between two document collections into ``output`` (:data:`COLUMNS`, best first).

    Args:
        src_docs, tgt_docs: JSONL (``id``, ``text``), a folder of ``.txt`` documents, or a text file.
        src_lang, tgt_lang: each side's language (default: the one most documents are identified as).
        align_documents: documents that share at least two mined pairs and are each other's best match are
            aligned sentence by sentence (:func:`mlembed.aligner.align`), so a sentence one translator split in two
            comes out as one pair (see the module).
        model: a multilingual model.
        options: the :class:`mlembed.knn.MiningOptions` of the mining (``threshold``, ``k``, ``index``,
            ``memory_budget``, ``resume``...); its ``workdir`` holds the split sentences and the mining's work
            (default ``OUTPUT.work``).
        file_options: anything else :func:`mlembed.mine.mine_files` takes (``calibrate``, ``backend``,
            ``show_progress``, ``timings``...).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "en.txt"), "w").write("The cat sleeps. Stocks fell sharply today.")
        >>> _ = open(os.path.join(d, "de.txt"), "w").write("Die Aktien fielen heute stark. Die Katze schläft.")
        >>> from mlembed.mine import MiningOptions
        >>> r = mine_documents(os.path.join(d, "en.txt"), os.path.join(d, "de.txt"), os.path.join(d, "out.tsv"),
        ...                    options=MiningOptions(threshold=1.0), show_progress=False)  # doctest: +SKIP
        >>> r.pairs  # doctest: +SKIP
        2
    """
    from mlembed.filtering import fold_text, has_text
    from mlembed.mine import MiningOptions, mine_files

    options = options or MiningOptions()
    output = Path(output)
    work = Path(options.workdir) if options.workdir is not None else output.with_name(output.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    report = DocumentMiningReport()
    clock = time.monotonic()
    src = _split_side(src_docs, src_lang, work / "src.sentences.txt", on_bad_line, report, "src")
    tgt = _split_side(tgt_docs, tgt_lang, work / "tgt.sentences.txt", on_bad_line, report, "tgt")
    report.timings["split"] = round(time.monotonic() - clock, 2)
    mined = work / "mined.tsv"
    timings: dict[str, float] = file_options.pop("timings", None) or {}
    mine_options = replace(options, workdir=work / "mine")
    _, report.threshold = mine_files(
        src, tgt, mined, model=model, options=mine_options, timings=timings, **file_options
    )
    report.timings.update(timings)
    clock = time.monotonic()
    rows = [line.rstrip("\n").split("\t") for line in open(mined, encoding="utf-8")]
    src_where = _provenance(src, {r[1] for r in rows})
    tgt_where = _provenance(tgt, {r[2] for r in rows})
    pairs = []
    for score, a, b in rows:  # filtered before documents are matched: boilerplate copies match no documents
        reason = "no_text" if not (has_text(a) and has_text(b)) else "copy" if fold_text(a) == fold_text(b) else None
        if reason:
            report.dropped[reason] += 1
        else:
            pairs.append((float(score), a, b, src_where[a], tgt_where[b]))
    report.timings["provenance"] = round(time.monotonic() - clock, 2)
    if align_documents:
        clock = time.monotonic()
        pairs = _aligned(pairs, src_docs, tgt_docs, src, tgt, model, on_bad_line, report)
        report.timings["align"] = round(time.monotonic() - clock, 2)
    pairs.sort(key=lambda p: -p[0])
    with atomic_open(output) as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for score, a, b, (src_doc, src_index), (tgt_doc, tgt_index) in pairs:
            fh.write(f"{score:.6f}\t{tsv_field(a)}\t{tsv_field(b)}\t{src_doc}\t{src_index}\t{tgt_doc}\t{tgt_index}\n")
            report.pairs += 1
    shutil.rmtree(work, ignore_errors=True)
    return report


def _aligned(
    pairs: list[tuple],
    src_docs: str | os.PathLike,
    tgt_docs: str | os.PathLike,
    src_text: Path,
    tgt_text: Path,
    model: Any,
    on_bad_line: OnBadLine,
    report: DocumentMiningReport,
) -> list[tuple]:
    """The mined ``pairs`` with those of matched documents replaced by the beads of their alignment.

    Documents are matched when each is the other's document with the most mined pairs, at least
    :data:`MIN_SHARED`. Each matched pair is aligned (beads 1-1, 1-2, 2-1, ... and omissions); a bead with
    sentences on both sides that contains a mined pair becomes one output pair, scored by the best mined pair
    in it, its text the original text from its first sentence to its last. Mined pairs touching a matched
    document and in no bead are dropped (``outside_aligned_documents``).
    """
    from mlembed.aligner import align
    from mlembed.data.documents import read_documents
    from mlembed.models import load_model

    counts = Counter((p[3][0], p[4][0]) for p in pairs)
    best_src: dict[str, tuple[int, str]] = {}
    best_tgt: dict[str, tuple[int, str]] = {}
    for (a, b), n in counts.items():
        if n > best_src.get(a, (0, ""))[0]:
            best_src[a] = (n, b)
        if n > best_tgt.get(b, (0, ""))[0]:
            best_tgt[b] = (n, a)
    matched = {a: b for a, (n, b) in best_src.items() if n >= MIN_SHARED and best_tgt[b][1] == a}
    if not matched:
        return pairs
    report.aligned_documents = len(matched)
    if isinstance(model, (str, os.PathLike)):  # loaded once for every matched pair, not by each align call
        model = load_model(model)
    sides = {
        "src": _document_sentences(src_text, set(matched)),
        "tgt": _document_sentences(tgt_text, set(matched.values())),
    }
    lines = {
        "src": {d.id: d.text.split("\n") for d in read_documents(src_docs, on_bad_line) if d.id in matched},
        "tgt": {
            d.id: d.text.split("\n") for d in read_documents(tgt_docs, on_bad_line) if d.id in set(matched.values())
        },
    }
    scores = {(p[3], p[4]): p[0] for p in pairs}
    targets = set(matched.values())
    out = [p for p in pairs if p[3][0] not in matched and p[4][0] not in targets]
    crossing = [p for p in pairs if (p[3][0] in matched or p[4][0] in targets) and matched.get(p[3][0]) != p[4][0]]
    report.dropped["outside_aligned_documents"] += len(crossing)
    used: set = set()
    for a, b in matched.items():
        src_sents, tgt_sents = sides["src"][a], sides["tgt"][b]
        for bead in align([x[4] for x in src_sents], [x[4] for x in tgt_sents], model=model):
            if not bead.src or not bead.tgt:
                continue
            keys = [((a, src_sents[i][0]), (b, tgt_sents[j][0])) for i in bead.src for j in bead.tgt]
            inside = [scores[key] for key in keys if key in scores]
            if not inside:
                continue
            used.update(keys)
            out.append(
                (
                    max(inside),
                    _span_text(lines["src"][a], [src_sents[i] for i in bead.src]),
                    _span_text(lines["tgt"][b], [tgt_sents[j] for j in bead.tgt]),
                    (a, ",".join(str(src_sents[i][0]) for i in bead.src)),
                    (b, ",".join(str(tgt_sents[j][0]) for j in bead.tgt)),
                )
            )
    report.dropped["not_in_alignment"] += sum(
        1 for p in pairs if matched.get(p[3][0]) == p[4][0] and (p[3], p[4]) not in used
    )
    return out


def _document_sentences(text_path: Path, docs: set[str]) -> dict[str, list[tuple[int, int, int, int, str]]]:
    """``(index, line, start, end, text)`` of each kept sentence of the documents ``docs``, in order."""
    out: dict[str, list] = {d: [] for d in docs}
    with open(text_path, encoding="utf-8") as texts, open(text_path.with_suffix(".prov"), encoding="utf-8") as prov:
        for text, where in zip(texts, prov):
            doc, index, line, start, end = where.rstrip("\n").split("\t")
            if doc in out:
                out[doc].append((int(index), int(line), int(start), int(end), text.rstrip("\n")))
    return out


def _span_text(lines: list[str], sentences: list[tuple[int, int, int, int, str]]) -> str:
    """The document's text from the first sentence to the last (a line break read as a space)."""
    first, last = sentences[0], sentences[-1]
    if first[1] == last[1]:
        return lines[first[1] - 1][first[2] : last[3]]
    parts = [lines[first[1] - 1][first[2] :]]
    parts += [lines[n - 1] for n in range(first[1] + 1, last[1])]
    parts.append(lines[last[1] - 1][: last[3]])
    return " ".join(part.strip() for part in parts if part.strip())
