"""Documents in, sentences out, each sentence with its provenance (document id, sentence index, line, span).

A collection of documents is one of:

* a ``.jsonl`` file: one JSON object a line with an ``id`` and a ``text`` (other keys are ignored); ids must be
  unique;
* a folder: every ``*.txt`` file under it (sorted, recursively) is a document, its id the path inside the folder;
* a text file: one document, its id the file name.

A document's lines are its paragraphs: a sentence never runs across a line break (web text, subtitles and
extracted PDFs break lines where sentences end). Each paragraph is cut into sentences by
:func:`mlembed.sentences.sentence_spans` in the document's language (given, else identified once per document).

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "news.jsonl")
    >>> _ = open(p, "w").write('{"id": "a1", "text": "Es regnet. Wir bleiben zu Hause.\\\\nMorgen nicht."}\\n')
    >>> [(s.doc, s.index, s.text) for s in document_sentences(p, "de")]
    [('a1', 0, 'Es regnet.'), ('a1', 1, 'Wir bleiben zu Hause.'), ('a1', 2, 'Morgen nicht.')]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mlembed.files import DataError, OnBadLine, read_lines

__all__ = ["Document", "Sentence", "read_documents", "document_sentences", "PROVENANCE_COLUMNS"]

#: what a sentence's provenance is written as, in TSV outputs
PROVENANCE_COLUMNS = ("doc", "sentence", "line", "start", "end")


class Document(NamedTuple):
    """One document: its ``id``, its ``text`` and the file (and line, for JSONL) it came from."""

    id: str
    text: str
    path: str
    line: int


class Sentence(NamedTuple):
    """A sentence of a document: ``doc`` id, ``index`` within the document (from 0), the ``line`` of the document
    it is on (from 1) and its ``start``/``end`` characters within that line; ``text == line_text[start:end]``."""

    doc: str
    index: int
    text: str
    line: int
    start: int
    end: int


def read_documents(path: str | os.PathLike, on_bad_line: OnBadLine = "error") -> Iterator[Document]:
    """Stream the documents of a JSONL file, a folder of ``.txt`` files or one text file (see the module).

    Raises:
        DataError: a missing path, a folder without ``.txt`` files, a JSONL line that is not an object with a
            string ``id`` (or number) and ``text``, or an id seen before, naming the file and line.

    Example:
        >>> read_documents("/no/such/docs").__next__()
        Traceback (most recent call last):
        ...
        mlembed.files.DataError: /no/such/docs: no such file or folder (expected a .jsonl file of {"id", "text"}, a folder of .txt files, or a text file)
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError("no .txt files in this folder (each .txt file is one document)", path)
        for file in files:
            yield Document(file.relative_to(path).as_posix(), _read_text(file, on_bad_line), str(file), 1)
    elif path.suffix == ".jsonl" and path.is_file():
        seen: set[str] = set()
        for number, line in read_lines(path, on_bad_line):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f'not JSON ({exc.msg}); expected {{"id": ..., "text": ...}}', path, number) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or obj.get("id") is None:
                raise DataError('expected an object with "id" and a string "text"', path, number)
            doc_id = str(obj["id"])
            if doc_id in seen:
                raise DataError(f"document id {doc_id!r} seen before: ids must be unique", path, number)
            seen.add(doc_id)
            yield Document(doc_id, obj["text"], str(path), number)
    elif path.is_file():
        yield Document(path.name, _read_text(path, on_bad_line), str(path), 1)
    else:
        raise DataError(
            'no such file or folder (expected a .jsonl file of {"id", "text"}, a folder of .txt files, or a text file)',
            path,
        )


def _read_text(path: Path, on_bad_line: OnBadLine) -> str:
    return "\n".join(text for _, text in read_lines(path, on_bad_line))


def document_sentences(
    path: str | os.PathLike | list[Document], lang: str | None = None, on_bad_line: OnBadLine = "error"
) -> Iterator[Sentence]:
    """The sentences of every document of a collection (a path as :func:`read_documents` reads, or documents).

    Args:
        lang: the documents' language (any tag :func:`mlembed.languages.normalize_lang` reads); None identifies
            each document's language once, from its text (:func:`mlembed.langid.identify`).
    """
    from mlembed.sentences import sentence_spans

    docs = read_documents(path, on_bad_line) if isinstance(path, (str, os.PathLike)) else path
    for doc in docs:
        code = lang
        if code is None:
            from mlembed.langid import identify

            code = identify(doc.text[:5000]) if doc.text.strip() else "en"
        index = 0
        for number, paragraph in enumerate(doc.text.split("\n"), start=1):
            if not paragraph.strip():
                continue
            for start, end in sentence_spans(paragraph, code):
                yield Sentence(doc.id, index, paragraph[start:end], number, start, end)
                index += 1
