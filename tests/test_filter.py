"""``mlembed filter`` on real Tatoeba pairs with noise put in: every kind dropped with its reason, real pairs kept,
bad lines refused with file and line, resume after a kill, and the kept file ready for distill."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mlembed.cli import main
from mlembed.files import DataError
from mlembed.filtering import FilterThresholds, filter_file


def _real_pairs(shared_data: Path, n: int) -> list[tuple[str, str]]:
    tat = shared_data / "tatoeba"
    en = (tat / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()
    de = (tat / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()
    return list(zip(en, de))[:n]


@pytest.fixture(scope="module")
def noisy(shared_data, tmp_path_factory) -> tuple[Path, list[str]]:
    """150 real English-German pairs and 20 noisy ones, each labelled."""
    real = _real_pairs(shared_data, 170)
    rows = [(a, b, "clean") for a, b in real[:150]]
    spare = real[150:]
    noise = [
        *[(spare[i][0], spare[(i + 3) % 10][1], "misaligned") for i in range(6)],
        *[(spare[i][0], spare[i][0], "copy") for i in range(6, 9)],
        ("2019", "2019", "no_text"),
        ("https://example.org/news/2019/04/11/a.html", "https://example.org/news/2019/04/11/a.html", "no_text"),
        (rows[3][0].upper(), rows[3][1].upper(), "duplicate"),
        (rows[8][0].rstrip(".!?"), rows[8][1].rstrip(".!?"), "duplicate"),
        # a French side, long enough to judge, in an English-German file
        (
            "The museum is closed on Mondays and on public holidays.",
            "Le musée est fermé le lundi et les jours fériés.",
            "wrong_language",
        ),
        (
            "I have been waiting for the bus for more than an hour.",
            "J'attends le bus depuis plus d'une heure.",
            "wrong_language",
        ),
    ]
    everything = rows + noise
    rng = np.random.default_rng(0)
    order = list(range(150)) + list(rng.permutation(np.arange(150, len(everything))))  # noise after the originals
    path = tmp_path_factory.mktemp("filter") / "corpus.en-de.tsv"
    path.write_text("".join(f"{everything[i][0]}\t{everything[i][1]}\n" for i in order), encoding="utf-8")
    return path, [everything[i][2] for i in order]


def _scores(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.precision
def test_each_kind_of_noise_is_dropped_with_its_reason_and_real_pairs_stay(noisy, e5_folder, tmp_path):
    path, labels = noisy
    report = filter_file(path, tmp_path / "scores.tsv", kept=tmp_path / "kept.tsv", model=str(e5_folder))
    rows = _scores(tmp_path / "scores.tsv")
    assert [int(r["line"]) for r in rows] == list(range(1, len(labels) + 1))
    assert report.languages == ("en", "de") and report.read == len(labels)
    reasons = {}
    for row, label in zip(rows, labels):
        reasons.setdefault(label, []).append(row["reason"])
    assert all(r == "copy" for r in reasons["copy"])
    assert all(r == "no_text" for r in reasons["no_text"])
    assert all(r == "duplicate" for r in reasons["duplicate"])
    assert all(r == "wrong_language" for r in reasons["wrong_language"])
    assert sum(r in ("low_margin", "length") for r in reasons["misaligned"]) >= 5
    assert sum(r == "" for r in reasons["clean"]) >= 0.95 * 150  # real pairs kept
    kept = (tmp_path / "kept.tsv").read_text(encoding="utf-8").splitlines()
    assert kept == [f"{r['source']}\t{r['target']}" for r in rows if not r["reason"]]
    assert report.kept == len(kept) and sum(report.dropped.values()) == len(rows) - len(kept)
    cosine = [float(r["cosine"]) for r in rows if r["reason"] != "no_text"]
    assert all(-1.0 <= c <= 1.0001 for c in cosine)


@pytest.mark.slow
def test_keep_fraction_keeps_that_share_best_margins_first(noisy, e5_folder, tmp_path):
    path, labels = noisy
    report = filter_file(path, tmp_path / "s.tsv", model=str(e5_folder), keep_fraction=0.5, show_progress=False)
    assert abs(report.kept - 0.5 * len(labels)) <= 2
    rows = _scores(tmp_path / "s.tsv")
    kept = [float(r["margin"]) for r in rows if not r["reason"]]
    low = [float(r["margin"]) for r in rows if r["reason"] == "low_score"]
    assert low and min(kept) >= max(low)


def test_a_line_without_two_fields_is_refused_naming_file_and_line_and_nothing_is_written(e5_folder, tmp_path):
    path = tmp_path / "bad.en-de.tsv"
    path.write_text("Good morning.\tGuten Morgen.\nonly one field\nThank you.\tDanke.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.en-de\.tsv:2: expected 2 tab-separated fields"):
        filter_file(path, tmp_path / "out.tsv", model=str(e5_folder), show_progress=False)
    assert not (tmp_path / "out.tsv").exists()
    report = filter_file(path, tmp_path / "out.tsv", model=str(e5_folder), on_bad_line="skip", show_progress=False)
    rows = _scores(tmp_path / "out.tsv")
    assert [r["reason"] for r in rows][1] == "malformed" and report.dropped["malformed"] == 1 and len(rows) == 3


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_block(noisy, e5_folder, tmp_path, monkeypatch):
    import mlembed.filtering as filtering

    path, _ = noisy
    fresh = tmp_path / "fresh.tsv"
    filter_file(path, fresh, model=str(e5_folder), block_size=60, show_progress=False)
    real, calls = filtering._score_block, []

    def dies_on_the_second_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(filtering, "_score_block", dies_on_the_second_block)
    out = tmp_path / "resumed.tsv"
    with pytest.raises(KeyboardInterrupt):
        filter_file(path, out, model=str(e5_folder), block_size=60, show_progress=False)
    assert not out.exists() and (tmp_path / "resumed.tsv.work" / "block-00000.npz").exists()
    with pytest.raises(DataError, match="--resume"):
        filter_file(path, out, model=str(e5_folder), block_size=60, show_progress=False)
    calls.clear()
    monkeypatch.setattr(filtering, "_score_block", lambda *a, **k: calls.append(1) or real(*a, **k))
    filter_file(path, out, model=str(e5_folder), block_size=60, resume=True, show_progress=False)
    assert len(calls) == 2  # blocks 2 and 3 of 3
    fresh_rows, resumed_rows = _scores(fresh), _scores(out)
    assert [r["reason"] for r in fresh_rows] == [r["reason"] for r in resumed_rows]
    assert not (tmp_path / "resumed.tsv.work").exists()


@pytest.mark.slow
def test_languages_come_from_a_header_or_are_identified(shared_data, e5_folder, tmp_path):
    real = _real_pairs(shared_data, 40)
    body = "".join(f"{a}\t{b}\n" for a, b in real)
    (tmp_path / "h.tsv").write_text("eng\tdeu\n" + body, encoding="utf-8")
    (tmp_path / "plain.tsv").write_text(body, encoding="utf-8")
    with_header = filter_file(tmp_path / "h.tsv", tmp_path / "a.tsv", model=str(e5_folder), show_progress=False)
    identified = filter_file(tmp_path / "plain.tsv", tmp_path / "b.tsv", model=str(e5_folder), show_progress=False)
    assert with_header.languages == identified.languages == ("en", "de")
    assert with_header.read == 40 and _scores(tmp_path / "a.tsv")[0]["line"] == "2"  # numbered as in the file


def test_thresholds_are_checked_and_the_cli_prints_what_it_dropped(noisy, e5_folder, tmp_path, capsys):
    path, labels = noisy
    with pytest.raises(ValueError, match="keep-fraction"):
        filter_file(path, tmp_path / "x.tsv", model=str(e5_folder), keep_fraction=1.5)
    code = main(["filter", str(path), "-o", str(tmp_path / "s.tsv"), "--kept", str(tmp_path / "k.tsv"),
                 "--model", str(e5_folder)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and f"read {len(labels)} pairs" in printed and "copy: 3" in printed
    assert FilterThresholds().margin < 1.0  # calibrated on e5-small's ratio margins (benchmarks/filter_quality.py)


def test_drop_limits_the_reasons_that_drop_and_marks_the_pairs_it_keeps(noisy, e5_folder, tmp_path):
    path, labels = noisy
    report = filter_file(path, tmp_path / "s.tsv", model=str(e5_folder), drop=("no_text", "length", "low_margin"),
                         show_progress=False)  # fmt: skip
    rows = _scores(tmp_path / "s.tsv")
    marked = [row["reason"] for row, label in zip(rows, labels) if label == "copy"]
    assert marked == ["kept:copy"] * 3 and report.flagged["copy"] == 3
    assert all(row["reason"] == "no_text" for row, label in zip(rows, labels) if label == "no_text")
    with pytest.raises(ValueError, match="--drop typo"):
        filter_file(path, tmp_path / "x.tsv", model=str(e5_folder), drop=("typo",))
