"""``mlembed data``: counts, cleaning summary, TSV output that reads back, and bad-input messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlembed.cli import main
from mlembed.data import Pair, read_pairs


def test_data_counts_and_output_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "eng-deu.tsv"
    src.write_text(
        "Good morning.\tGuten Morgen.\nGood  morning.\tGuten Morgen.\nHi\tHallo\n\tleer\n", encoding="utf-8"
    )
    out = tmp_path / "clean.tsv"
    assert main(["data", f"tsv:{src}", "--min-words", "2", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("en-de"))
    assert row.split() == ["en-de", "4", "1", "1", "1", "0", "0", "0", "1"]
    assert "1 pairs kept of 4 read" in printed and f"wrote 1 pairs to {out}" in printed
    assert out.read_text(encoding="utf-8") == "en\tde\nGood morning.\tGuten Morgen.\n"
    assert list(read_pairs(f"tsv:{out}")) == [Pair("Good morning.", "Guten Morgen.", "en", "de")]


def test_data_folder_output_per_language_pair(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "multi.tsv"
    src.write_text("eng\tdeu\tfra\nYes, of course.\tJa, natürlich.\tOui, bien sûr.\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["data", f"tsv:{src}", "--output", str(out), "--limit", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["en-de.tsv", "en-fr.tsv"]
    assert main(["data", f"tsv:{src}", "--output", str(tmp_path / "one.tsv")]) == 2
    assert "several language pairs" in capsys.readouterr().err and not (tmp_path / "one.tsv").exists()


def test_data_bad_input_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "eng-deu.tsv"
    src.write_bytes(b"One.\tEins.\nTwo.\tZw\xffei.\n")
    assert main(["data", f"tsv:{src}"]) == 2
    assert f"{src}:2: invalid UTF-8" in capsys.readouterr().err
    assert main(["data", f"tsv:{src}", "--on-bad-line", "skip"]) == 0
    assert "1 pairs kept of 1 read" in capsys.readouterr().out
    assert main(["data", "csv:x.csv"]) == 2
    assert "csv:x.csv: unknown kind of data spec: expected KIND:WHERE with KIND one of tsv" in capsys.readouterr().err


def test_data_shared_tatoeba_no_clean(shared_data: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", f"tatoeba:{shared_data / 'tatoeba'}", "--langs", "deu,fra", "--no-clean"]) == 0
    assert "2000 pairs kept of 2000 read" in capsys.readouterr().out
