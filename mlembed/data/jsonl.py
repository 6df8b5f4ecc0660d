"""``jsonl:PATH`` — one JSON object a line: ``{"src": ..., "tgt": ..., "src_lang": ..., "tgt_lang": ...}``.

``PATH`` is a file, a folder (its ``*.jsonl``, sorted) or a glob, optionally ending in ``@src-tgt``
to give the languages of objects that have no ``src_lang``/``tgt_lang`` keys (file names like
``x.en-de.jsonl`` work too).  Other keys are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from mlembed.data.base import Pair, expand_paths, langs_from_filename, oriented, parse_lang_pair, split_at_suffix
from mlembed.files import DataError, OnBadLine, read_lines
from mlembed.languages import matches_any, normalize_lang


def read_jsonl(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream pairs from JSON Lines; bad JSON or a missing key is a :class:`DataError` with file:line.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "p.jsonl")
        >>> _ = open(p, "w").write('{"src": "Yes", "tgt": "Ja", "src_lang": "eng", "tgt_lang": "deu"}\\n')
        >>> list(read_jsonl(p))
        [Pair(src='Yes', tgt='Ja', src_lang='en', tgt_lang='de')]
    """
    path, suffix = split_at_suffix(target)
    default = parse_lang_pair(suffix) if suffix else None
    if suffix and default is None:
        raise DataError(f"cannot read languages from @{suffix} (expected e.g. @en-de)", path)
    cache: dict[str, str] = {}

    def norm(code: str) -> str:
        if code not in cache:
            cache[code] = normalize_lang(code)
        return cache[code]

    for file in expand_paths(path, ".jsonl"):
        file_langs = default or langs_from_filename(file)
        for number, text in read_lines(file, on_bad_line):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
                src, tgt = obj["src"], obj["tgt"]
                if not isinstance(src, str) or not isinstance(tgt, str):
                    raise ValueError("'src' and 'tgt' must be strings")
                if "src_lang" in obj and "tgt_lang" in obj:
                    src_lang, tgt_lang = norm(str(obj["src_lang"])), norm(str(obj["tgt_lang"]))
                elif file_langs:
                    src_lang, tgt_lang = file_langs
                else:
                    raise ValueError(
                        "missing language: no 'src_lang'/'tgt_lang' keys, no @src-tgt suffix on the spec "
                        "and no languages in the file name"
                    )
            except (ValueError, KeyError) as exc:
                if on_bad_line == "skip":
                    continue
                detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                raise DataError(f"bad JSON line: {detail}", file, number) from None
            pair = oriented(src, tgt, src_lang, tgt_lang)
            if matches_any(pair.tgt_lang, langs):
                yield pair
