"""No traceback reaches a user: every verb turns bad input into one line naming what was wrong, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlembed.cli import main


def _files(tmp_path: Path) -> dict[str, Path]:
    files = {  # key: (file name, content)
        "en": ("en.txt", "Hello world\nGood morning\nThe cat sleeps\n"),
        "de": ("de.txt", "Hallo Welt\nGuten Morgen\nDie Katze schläft\n"),
        "empty": ("empty.eng-deu.tsv", ""),
        "pairs": ("pairs.eng-deu.tsv", "Hello\tHallo\n"),
        "sts1": ("sts1.tsv", "genre\tfile\t2012\t1\t5.0\tHello\tHi\n"),
    }
    out = {}
    for key, (name, text) in files.items():
        out[key] = tmp_path / name
        out[key].write_text(text, encoding="utf-8")
    return out


CASES = {
    "mine-memory-budget": (
        ["mine", "--src", "{en}", "--tgt", "{de}", "-o", "{tmp}/o.tsv", "--memory-budget", "1X"],
        "--memory-budget: cannot read a memory size from '1X' (use e.g. 1G, 512M)",
    ),
    "mine-missing-file": (
        ["mine", "--src", "{tmp}/nope.txt", "--tgt", "{de}", "-o", "{tmp}/o.tsv"],
        "nope.txt: no such file (expected a text file, one sentence a line)",
    ),
    "index-ivfpq-too-few": (
        ["index", "build", "--input", "{en}", "-o", "{tmp}/idx", "--type", "ivfpq"],
        "needs at least 256 vectors to train, got 3: use the exact 'flat' type",
    ),
    "index-bad-factory": (
        ["index", "build", "--input", "{en}", "-o", "{tmp}/idx", "--type", "IVF-nonsense"],
        "not a valid index type or FAISS factory string: 'IVF-nonsense'",
    ),
    "distill-empty": (
        ["distill", "--data", "tsv:{empty}", "--output", "{tmp}/d", "--student", "auto", "--max-steps", "1"],
        "no training pairs found in tsv:",
    ),
    "distill-dim": (["distill", "--output", "{tmp}/d", "--dim", "-3"], "--dim -3: expected a positive dimension"),
    "sts-one-row": (
        ["evaluate", "--model", "minilm-en", "--task", "sts:{sts1}", "-o", "{tmp}/ev"],
        "need at least 2 scored pairs for a correlation",
    ),
    "data-langs": (["data", "--langs", "@", "tsv:{pairs}"], "not a language code: '@'"),
    "encode-directory": (["encode", "{tmp}", "-o", "{tmp}/e.npy"], "is a directory"),
    "search-no-index": (["search", "--index", "{tmp}", "hello"], "not an mlembed index (no meta.json)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_is_one_line_exit_2(case, tmp_path, capsys):
    files = {name: str(path) for name, path in _files(tmp_path).items()}
    argv, expected = CASES[case]
    argv = [a.format(tmp=tmp_path, **files) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], err[-1500:]
    assert "Traceback" not in err and "this looks like a bug" not in err
    assert not (tmp_path / ".idx.staging").exists() and not (tmp_path / "idx").exists()  # nothing half-built


def test_corrupt_index_meta_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "meta.json").write_text('{"model": "minilm-en",')
    assert main(["search", "--index", str(folder), "hello"]) == 2
    assert f"{folder / 'meta.json'}:1: not valid JSON" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="not a language code"):
        main(["--debug", "data", "--langs", "@", f"tsv:{_files(tmp_path)['pairs']}"])


def test_an_unexpected_error_is_reported_as_a_bug(monkeypatch, capsys):
    import mlembed.cli.info as info

    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(info, "run", broken)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert "mlembed info: error: unsupported operand" in err and "rerun with --debug" in err


def test_unknown_language_code_warns(tmp_path, caplog):
    from mlembed.distill.config import DistillConfig, validate

    validate(DistillConfig(output=str(tmp_path / "d"), langs=["de", "qqx"], student="auto"))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "unknown language code(s) qqx" in caplog.records[0].getMessage()


def test_the_library_logs_and_the_cli_decides_what_shows(tmp_path, capsys):
    argv = ["distill", "--output", str(tmp_path / "d"), "--langs", "qqx", "--data", "tsv:/nonexistent.eng-deu.tsv"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "[mlembed.distill.config] unknown language code(s) qqx" in err
    assert main(["-q", *argv]) == 2
    assert "unknown language" in capsys.readouterr().err  # a warning passes -q


def test_evaluate_keeps_the_tasks_that_finished_before_a_failure(tmp_path, capsys):
    import json

    files = _files(tmp_path)
    good = tmp_path / "good.tsv"
    good.write_text(
        "".join(f"g\tf\t2012\t{i}\t{i % 5}.0\tA sentence {i}.\tAnother sentence {i % 3}.\n" for i in range(6))
    )
    argv = [
        "evaluate",
        "--model",
        "minilm-en",
        "--task",
        f"sts:{good}",
        "--task",
        f"sts:{files['sts1']}",
        "-o",
        str(tmp_path / "ev"),
    ]
    assert main(argv) == 2
    assert "need at least 2 scored pairs" in capsys.readouterr().err
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert saved["complete"] is False and {r["spec"] for r in saved["results"]} == {f"sts:{good}"}
