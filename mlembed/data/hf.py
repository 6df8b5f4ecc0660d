"""``hf:NAME[:config][:split]`` — Hugging Face ``datasets``: a folder saved with ``save_to_disk``
(read offline with ``load_from_disk``) or a hub dataset (``load_dataset``, streamed; needs internet
or the local HF cache).  The split defaults to ``train``.

Column layouts understood (first match wins):

* ``translation``: a dict ``{lang: text}`` per row (WMT, OPUS Books...): the English entry is the
  source, every other entry a target;
* ``src`` / ``tgt``, with languages from ``src_lang`` / ``tgt_lang`` columns if present;
* ``english`` / ``non_english`` (sentence-transformers' ``parallel-sentences-*`` datasets).

For the last two, languages missing from the columns come from a config named like ``en-de`` or a
``@src-tgt`` suffix on the spec (``hf:./ds@en-de``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlembed.data.base import Pair, oriented, parse_lang_pair, split_at_suffix
from mlembed.files import DataError, OnBadLine
from mlembed.languages import matches_any, normalize_lang

LAYOUTS = ("translation", "src/tgt", "english/non_english")


def _load(name: str, config: str | None, split: str) -> tuple[Iterable[dict[str, Any]], list[str]]:
    import datasets

    folder = Path(name)
    try:
        if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
            data = datasets.load_from_disk(str(folder))
            if isinstance(data, datasets.DatasetDict):
                if split not in data:
                    raise DataError(f"no split {split!r} (splits: {', '.join(data)})", folder)
                data = data[split]
        else:
            data = datasets.load_dataset(name, config, split=split, streaming=True)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types (offline, missing config, ...)
        raise DataError(
            f"cannot load this Hugging Face dataset: {exc} (offline, pass a folder saved with save_to_disk)", name
        ) from None
    columns = list(data.column_names or [])
    if not columns:  # streaming datasets may only know their columns once read
        first = next(iter(data), None)
        columns = list(first) if first else []
    return data, columns


def read_hf(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream pairs from a Hugging Face dataset (see the module docstring for the layouts).

    Example:
        >>> import datasets, tempfile
        >>> d = tempfile.mkdtemp()
        >>> datasets.Dataset.from_dict({"translation": [{"en": "Yes", "de": "Ja"}]}).save_to_disk(d)  # doctest: +ELLIPSIS
        ...
        >>> list(read_hf(d))
        [Pair(src='Yes', tgt='Ja', src_lang='en', tgt_lang='de')]
    """
    where, suffix = split_at_suffix(target)
    parts = where.split(":")
    name, config, split = (
        parts[0],
        (parts[1] or None) if len(parts) > 1 else None,
        parts[2] if len(parts) > 2 else "train",
    )
    if len(parts) > 3 or not name:
        raise DataError("expected hf:NAME[:config][:split]", f"hf:{target}")
    default = parse_lang_pair(suffix) if suffix else (parse_lang_pair(config) if config else None)
    data, columns = _load(name, config, split)
    if "translation" in columns:
        for row in data:
            texts = row["translation"]
            tags = {code: normalize_lang(code) for code in texts}
            pivot = next((c for c in texts if tags[c].split("-")[0] == "en"), next(iter(texts)))
            for code, text in texts.items():
                if code != pivot and matches_any(tags[code], langs):
                    yield Pair(texts[pivot], text, tags[pivot], tags[code])
        return
    if {"src", "tgt"} <= set(columns):
        keys = ("src", "tgt")
    elif {"english", "non_english"} <= set(columns):
        keys = ("english", "non_english")
        default = ("en", default[1]) if default else None
    else:
        raise DataError(f"no known column layout (columns: {columns}; understood: {', '.join(LAYOUTS)})", name)
    per_row = "src_lang" in columns and "tgt_lang" in columns
    if not per_row and default is None:
        raise DataError(
            f"missing language: no src_lang/tgt_lang columns; name it with @src-tgt (hf:{name}@en-de)", name
        )
    for row in data:
        src_lang, tgt_lang = (normalize_lang(row["src_lang"]), normalize_lang(row["tgt_lang"])) if per_row else default
        pair = oriented(row[keys[0]], row[keys[1]], src_lang, tgt_lang)
        if matches_any(pair.tgt_lang, langs):
            yield pair
