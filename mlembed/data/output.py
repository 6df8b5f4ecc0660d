"""Writing pairs as TSV with a header naming the languages, atomically (readable back with ``tsv:``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from mlembed.data.base import Pair
from mlembed.files import DataError, atomic_open


def tsv_field(text: str) -> str:
    """``text`` as one TSV field: tabs and line breaks become spaces (what ``data`` and ``mine`` write).

    Example:
        >>> tsv_field("a\\tb\\r\\nc")
        'a b  c'
    """
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def write_tsv(pairs: Iterable[Pair], output: str | os.PathLike) -> dict[str, int]:
    """Write ``pairs`` to ``output`` and return the count per language pair (``"en-de"``).

    ``output`` ending in ``.tsv`` is one file with a header ``SRC_LANG<TAB>TGT_LANG``: all pairs must
    then share their languages (else :class:`DataError`, and nothing is written).  Any other
    ``output`` is a folder receiving one ``SRC-TGT.tsv`` per language pair.  Files appear only when
    complete; tabs and newlines inside a text become spaces.

    Example:
        >>> import tempfile, os
        >>> out = os.path.join(tempfile.mkdtemp(), "de.tsv")
        >>> write_tsv([Pair("Yes", "Ja", "en", "de")], out)
        {'en-de': 1}
        >>> open(out).read()
        'en\\tde\\nYes\\tJa\\n'
    """
    output = Path(output)
    single = output.suffix == ".tsv"
    if not single and output.exists() and not output.is_dir():
        raise DataError("output must be a .tsv file or a folder", output)
    counts: dict[str, int] = {}
    handles: dict[str, IO] = {}
    with contextlib.ExitStack() as stack:
        for pair in pairs:
            key = f"{pair.src_lang}-{pair.tgt_lang}"
            fh = handles.get(key)
            if fh is None:
                if single and handles:
                    raise DataError(
                        f"pairs of several language pairs ({', '.join(handles)}, {key}): give a folder as "
                        "output to write one SRC-TGT.tsv per language pair",
                        output,
                    )
                if not single and (Path(key).name != key or key.startswith(".")):  # never write outside output
                    raise DataError(f"language pair {key!r} cannot name a file inside the output folder", output)
                fh = stack.enter_context(atomic_open(output if single else output / f"{key}.tsv"))
                fh.write(f"{pair.src_lang}\t{pair.tgt_lang}\n")
                handles[key] = fh
                counts[key] = 0
            fh.write(f"{tsv_field(pair.src)}\t{tsv_field(pair.tgt)}\n")
            counts[key] += 1
    return counts
