"""``mlembed align``: the bead search on small real documents with known merges and omissions, empty sides, the
scorer, the CLI (files, directories, resume, TSV of pairs) and its errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mlembed.aligner import Bead, align, anchors, band, document_pairs
from mlembed.cli import main
from mlembed.evaluation.alignment import alignment_scores, read_beads


@pytest.fixture(scope="module")
def e5(e5_folder):
    from mlembed.models import load_model

    return load_model(e5_folder)


def documents(shared: Path, n: int, seed: int) -> tuple[list[str], list[str], list]:
    """German and English documents from Tatoeba test pairs, with seeded merges (2-1, 1-2) and omissions."""
    tatoeba = shared / "tatoeba"
    de = (tatoeba / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()[:n]
    en = (tatoeba / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()[:n]
    rng = random.Random(seed)
    src, tgt, gold, i = [], [], [], 0
    while i < n:
        r = rng.random()
        if r < 0.06:
            gold.append(((len(src),), ()))
            src.append(de[i])
            i += 1
        elif r < 0.12:
            gold.append(((), (len(tgt),)))
            tgt.append(en[i])
            i += 1
        elif r < 0.2 and i + 1 < n:
            gold.append(((len(src), len(src) + 1), (len(tgt),)))
            src += [de[i], de[i + 1]]
            tgt.append(f"{en[i]} {en[i + 1]}")
            i += 2
        elif r < 0.28 and i + 1 < n:
            gold.append(((len(src),), (len(tgt), len(tgt) + 1)))
            src.append(f"{de[i]} {de[i + 1]}")
            tgt += [en[i], en[i + 1]]
            i += 2
        else:
            gold.append(((len(src),), (len(tgt),)))
            src.append(de[i])
            tgt.append(en[i])
            i += 1
    return src, tgt, gold


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_known_merges_and_omissions_are_found_in_real_documents(shared_data, e5):
    src, tgt, gold = documents(shared_data, 120, seed=1)
    kinds = {(len(a), len(b)) for a, b in gold}
    assert {(2, 1), (1, 2), (1, 0), (0, 1), (1, 1)} <= kinds
    beads = align(src, tgt, e5)
    got = [(b.src, b.tgt) for b in beads]
    # every sentence of both sides once, in order
    assert [i for a, _ in got for i in a] == list(range(len(src)))
    assert [j for _, b in got for j in b] == list(range(len(tgt)))
    scores = alignment_scores([gold], [got])
    assert scores["f1_strict"] >= 0.88 and scores["f1_lax"] >= 0.97, scores  # 0.920 / 0.995 measured (bf16)
    found = set(got)
    merges = [b for b in gold if len(b[0]) + len(b[1]) == 3]
    assert sum(b in found for b in merges) >= 0.8 * len(merges)  # the merged lines come back as 2-1 and 1-2 beads


def test_an_empty_side_gives_every_sentence_alone():
    beads = align(["Eins.", "Zwei."], [], model=None)
    assert [(b.src, b.tgt) for b in beads] == [((0,), ()), ((1,), ())]
    assert [(b.src, b.tgt) for b in align([], ["One."], model=None)] == [((), (0,))]


def test_anchors_skip_a_target_block_and_the_band_keeps_it_reachable():
    """A 30-sentence block missing on one side: anchors jump over it and every row's band still links up."""
    rng = np.random.default_rng(0)
    tgt = rng.normal(size=(80, 32)).astype(np.float32)
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True)
    keep = np.r_[0:20, 50:80]
    src = tgt[keep] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    src /= np.linalg.norm(src, axis=1, keepdims=True)
    points = anchors(src, tgt)
    assert (keep[points[:, 0]] == points[:, 1]).mean() > 0.95
    lo, hi = band(points, 50, 80, 4)
    assert lo[20] <= 20 and hi[20] >= 50  # the row at the jump spans the omitted block
    assert np.all(lo[1:] <= hi[:-1] + 1)  # consecutive rows overlap


def test_bead_format_is_what_vecalign_scorers_read(tmp_path):
    (tmp_path / "b.txt").write_text(Bead((0,), (0, 1), 0.5).format() + "\n" + Bead((), (2,), 0.1).format() + "\n")
    assert read_beads(tmp_path / "b.txt") == [((0,), (0, 1)), ((), (2,))]
    (tmp_path / "bad.txt").write_text("[0]:[0]\n0-0\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected a bead"):
        read_beads(tmp_path / "bad.txt")
    gold = [[((0,), (0,)), ((1, 2), (1,))]]
    assert alignment_scores(gold, gold)["f1_strict"] == 1.0


@pytest.mark.precision  # F1 of vectors at `auto` precision; CI reruns under fp32 and bf16
def test_cli_aligns_files_directories_and_pair_lists_and_resumes(shared_data, e5_folder, tmp_path, capsys):
    src, tgt, gold = documents(shared_data, 40, seed=2)
    for side in ("de", "en"):
        (tmp_path / side).mkdir()
    for name, seed in (("a.txt", 2), ("b.txt", 3)):
        s, t, _ = documents(shared_data, 40, seed=seed)
        (tmp_path / "de" / name).write_text("\n".join(s) + "\n", encoding="utf-8")
        (tmp_path / "en" / name).write_text("\n".join(t) + "\n", encoding="utf-8")
    model = ["--model", str(e5_folder)]
    de, en = tmp_path / "de" / "a.txt", tmp_path / "en" / "a.txt"
    assert (
        main(
            [
                "align",
                "--src",
                str(de),
                "--tgt",
                str(en),
                "-o",
                str(tmp_path / "a.beads"),
                "--tsv",
                str(tmp_path / "a.tsv"),
                *model,
            ]
        )
        == 0
    )
    assert "sentences ->" in capsys.readouterr().out
    beads = read_beads(tmp_path / "a.beads")
    assert alignment_scores([gold], [beads])["f1_strict"] >= 0.85
    rows = (tmp_path / "a.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(beads) and all(len(r.split("\t")) == 3 for r in rows)
    out = tmp_path / "out"
    assert main(["align", "--src", str(tmp_path / "de"), "--tgt", str(tmp_path / "en"), "-o", str(out), *model]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]
    (out / "b.txt").unlink()  # as if killed before the second document: the rerun does only that one
    before = (out / "a.txt").stat().st_mtime_ns
    assert main(["align", "--src", str(tmp_path / "de"), "--tgt", str(tmp_path / "en"), "-o", str(out), *model]) == 0
    assert "1 already there, kept" in capsys.readouterr().out
    assert (out / "b.txt").exists() and (out / "a.txt").stat().st_mtime_ns == before
    (tmp_path / "pairs.tsv").write_text("de/a.txt\ten/a.txt\nde/b.txt\ten/b.txt\n")
    assert [p[2] for p in document_pairs(tmp_path / "pairs.tsv")] == ["a.txt", "b.txt"]


def test_cli_errors_name_the_file_and_what_was_expected(tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("Hallo Welt.\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    assert main(["align", "--src", str(tmp_path / "empty.txt"), "--tgt", str(good), "-o", str(tmp_path / "o")]) == 2
    assert "empty.txt: empty document: nothing to align" in capsys.readouterr().err
    (tmp_path / "bad.txt").write_bytes(b"Hallo\n\xff\xfe kaputt\n")
    assert main(["align", "--src", str(tmp_path / "bad.txt"), "--tgt", str(good), "-o", str(tmp_path / "o")]) == 2
    assert "bad.txt:2: invalid UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing half-written
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    (tmp_path / "d1" / "x.txt").write_text("a\n")
    assert (
        main(["align", "--src", str(tmp_path / "d1"), "--tgt", str(tmp_path / "d2"), "-o", str(tmp_path / "o")]) == 2
    )
    assert "have no counterpart" in capsys.readouterr().err
    assert main(["align", "--src", str(good), "-o", str(tmp_path / "o")]) == 2
    assert "give --src and --tgt" in capsys.readouterr().err


def test_the_same_language_on_both_sides_is_warned_about(teacher, tmp_path, caplog):
    from mlembed.aligner import align_files
    from mlembed.data.english import english_sentences

    text = "\n".join(english_sentences("heldout")[:30]) + "\n"
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text(text)
    report = align_files(tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "beads.txt", teacher)
    assert any("same language" in w for w in report.warnings)
    assert "same language" in caplog.text


@pytest.mark.precision  # F1 of vectors at `auto` precision; CI reruns under fp32 and bf16
def test_split_aligns_paragraphs_sentence_by_sentence_and_keeps_where_each_came_from(shared_data, e5_folder, tmp_path):
    """NTREX articles as paragraphs (one a line) in German and English: --split cuts them into sentences, and the
    beads pair sentences of the same NTREX line."""
    root = shared_data / "ntrex128"
    ids = (root / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    sides = {}
    for code in ("deu", "eng-US"):
        lines = (root / f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()
        articles: dict[str, list[tuple[int, str]]] = {}
        for number, (doc, line) in enumerate(zip(ids, lines)):
            articles.setdefault(doc, []).append((number, line.strip()))
        chosen = list(articles.values())[:8]
        paragraphs, owner = [], []  # owner[p]: (start offset, NTREX line) of each sentence in paragraph p
        for article in chosen:
            offsets, pos = [], 0
            for number, text in article:
                offsets.append((pos, number))
                pos += len(text) + 1
            paragraphs.append(" ".join(text for _, text in article))
            owner.append(offsets)
        (tmp_path / f"{code}.txt").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
        sides[code] = owner
    out = tmp_path / "beads.txt"
    args = ["align", "--src", str(tmp_path / "deu.txt"), "--tgt", str(tmp_path / "eng-US.txt"), "-o", str(out)]
    assert main([*args, "--split", "--src-lang", "de", "--model", str(e5_folder)]) == 0
    where = {}
    for side, code in (("src", "deu"), ("tgt", "eng-US")):
        rows = [r.split("\t") for r in Path(f"{out}.{side}.tsv").read_text(encoding="utf-8").splitlines()]
        paragraphs = (tmp_path / f"{code}.txt").read_text(encoding="utf-8").splitlines()
        assert all(paragraphs[int(line) - 1][int(a) : int(b)] == text for line, a, b, text in rows)  # provenance
        where[side] = [max(n for off, n in sides[code][int(line) - 1] if off <= int(a)) for line, a, _, _ in rows]
    beads = [b for b in read_beads(out) if b[0] and b[1]]
    right = sum(bool({where["src"][i] for i in s} & {where["tgt"][j] for j in t}) for s, t in beads)
    assert right / len(beads) >= 0.9, right / len(beads)
