"""Fuzz targets shared by ``tests/test_fuzz.py`` (a few hundred inputs) and ``benchmarks/reliability.py``
(many more): every reader and the ``data`` verb get arbitrary bytes, and either read them or stop with a
:class:`mlembed.files.DataError` naming the file; well-formed inputs must come back whole.
"""

from __future__ import annotations

import io
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from mlembed.data import read_pairs
from mlembed.files import DataError

#: field text that survives a TSV/line round trip: no line or field separators, not blank
SEPARATORS = "\t\n\r"


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_bytes(kind: str, data: bytes, other: bytes = b"") -> str:
    """Feed ``data`` to the reader ``kind``; return ``ok`` or ``error`` (a DataError naming the input),
    and let anything else (a traceback a user would see) propagate."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if kind == "tsv":
            spec = f"tsv:{_write(d, 'x.eng-deu.tsv', data)}"
        elif kind == "pair":
            spec = f"pair:{_write(d, 'a.txt', data)}@en,{_write(d, 'b.txt', other)}@de"
        elif kind == "jsonl":
            spec = f"jsonl:{_write(d, 'x.jsonl', data)}@en-de"
        elif kind == "gettext":
            _write(d, "de/LC_MESSAGES/x.mo", data)
            spec = f"gettext:{d}"
        else:
            raise ValueError(kind)
        try:
            list(read_pairs(spec))
        except DataError as exc:
            assert str(tmp) in str(exc) or "spec" in str(exc), f"error does not name the input: {exc}"
            return "error"
        return "ok"


def tsv_round_trip(rows: list[tuple[str, str]]) -> int:
    """Write well-formed rows as a TSV with a header, read them back; return how many were lost (goal 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        text = "eng\tdeu\n" + "".join(f"{a}\t{b}\n" for a, b in rows)
        path = _write(Path(tmp), "x.tsv", text.encode("utf-8"))
        back = [(p.src, p.tgt) for p in read_pairs(f"tsv:{path}")]
        assert back == rows[: len(back)], "rows changed on the way"
        return len(rows) - len(back)


def cli_data(data: bytes) -> int:
    """``mlembed data tsv:FILE`` on arbitrary bytes: the exit code (0 or 2); output captured."""
    from mlembed.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "x.eng-deu.tsv", data)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(["data", f"tsv:{path}", "--output", str(Path(tmp) / "o.tsv")])
        assert "Traceback" not in err.getvalue() and "looks like a bug" not in err.getvalue(), err.getvalue()
        assert rc in (0, 2), rc
        return rc
