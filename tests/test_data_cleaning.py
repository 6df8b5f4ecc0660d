"""Cleaning: normalisation, each filter rule, dedupe and decontamination against real Tatoeba lines."""

from __future__ import annotations

from pathlib import Path

from mlembed.data import Pair, read_pairs
from mlembed.data.cleaning import CleanOptions, CleanStats, clean_pairs, length_units, normalize_text


def test_normalisation_nfc_and_whitespace() -> None:
    assert normalize_text("Cafe\u0301\t\tau\u00a0lait \n") == "Café au lait"
    assert normalize_text("Cafe\u0301  x", nfc=False, fold_whitespace=False) == "Cafe\u0301  x"
    assert length_units("今天天气很好。") == 20 and length_units("Straße") == 6 and length_units("ありがとう") == 10


def test_each_rule_counts_its_reason() -> None:
    pairs = [
        Pair("Good morning, everyone.", "Guten Morgen, alle zusammen.", "en", "de"),  # kept
        Pair("  ", "Leer", "en", "de"),  # empty
        Pair("Hi", "Hallo", "en", "de"),  # too_short (min_words=2)
        Pair("A " * 40, "B " * 40, "en", "de"),  # too_long (max_chars=60)
        Pair("A tiny bit", "Ein außerordentlich langer und ausführlicher Satz", "en", "de"),  # ratio
        Pair("Good  morning, everyone.", "Guten Morgen,\talle zusammen.", "en", "de"),  # duplicate after folding
        Pair("Good morning, everyone.", "Guten Morgen, alle zusammen.", "en", "nl"),  # other language: kept
        Pair("The weather is lovely today.", "今天天气很好。", "en", "zh-Hans"),  # CJK not a ratio outlier
    ]
    stats = CleanStats()
    kept = list(clean_pairs(pairs, CleanOptions(min_words=2, max_chars=60), stats))
    assert [p.tgt_lang for p in kept] == ["de", "nl", "zh-Hans"]
    assert kept[0] == Pair("Good morning, everyone.", "Guten Morgen, alle zusammen.", "en", "de")
    expected = {"read": 8, "kept": 3, "empty": 1, "too_short": 1, "too_long": 1, "ratio": 1, "duplicate": 1}
    assert {k: stats.totals[k] for k in expected} == expected
    assert stats.by_lang["en-de"]["read"] == 6 and stats.by_lang["en-zh-Hans"]["kept"] == 1
    summary = stats.summary()
    assert (
        "en-de" in summary and "duplicate" in summary and summary.splitlines()[-1].split()[:3] == ["total", "8", "3"]
    )


def test_options_none_only_counts() -> None:
    stats = CleanStats()
    pairs = [Pair("x", "x", "en", "de"), Pair("x", "x", "en", "de")]
    assert list(clean_pairs(pairs, None, stats)) == pairs and stats.totals["kept"] == 2


def test_decontamination_with_tatoeba_lines(shared_data: Path, tmp_path: Path) -> None:
    tatoeba = shared_data / "tatoeba"
    eng = (tatoeba / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()
    fra = (tatoeba / "tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    rows = [
        f"{eng[0]}\tIrgendeine Übersetzung.",  # English side is a test sentence
        f"Some harmless training sentence.\t{fra[5]}",  # other side is a test sentence
        f"  {eng[1]}  \tNoch eine Übersetzung.",  # matches after whitespace folding
        "A perfectly clean sentence here.\tEin ganz sauberer Satz hier.",
    ]
    data = tmp_path / "eng-deu.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    stats = CleanStats()
    kept = list(read_pairs(f"tsv:{data}", clean=CleanOptions(decontaminate=[str(tatoeba)]), stats=stats))
    assert [p.src for p in kept] == ["A perfectly clean sentence here."]
    assert stats.totals["contaminated"] == 3
    assert stats.decontamination_sentences > 20000  # 24 files of 1,000 lines, minus repeats
    single = list(read_pairs(f"tsv:{data}", clean=CleanOptions(decontaminate=[str(tatoeba / "tatoeba.fra-eng.fra")])))
    assert len(single) == 3


def test_dedupe_across_specs(tmp_path: Path) -> None:
    a = tmp_path / "a.en-de.tsv"
    b = tmp_path / "b.en-de.tsv"
    a.write_text("Same sentence.\tGleicher Satz.\n", encoding="utf-8")
    b.write_text("Same sentence.\tGleicher Satz.\nOther sentence.\tAnderer Satz.\n", encoding="utf-8")
    stats = CleanStats()
    kept = list(read_pairs([f"tsv:{a}", f"tsv:{b}"], clean=CleanOptions(), stats=stats))
    assert [p.src for p in kept] == ["Same sentence.", "Other sentence."] and stats.totals["duplicate"] == 1


def test_hashset64_matches_a_python_set() -> None:
    import numpy as np

    from mlembed.data.cleaning import HashSet64

    rng = np.random.default_rng(0)
    hs, reference = HashSet64(), set()
    for _ in range(60):
        keys = rng.integers(0, 3000, size=rng.integers(0, 200)).astype(np.uint64)
        keys[::7] = np.uint64(2**64 - 1)  # the largest key works too
        expected = []
        for k in keys.tolist():
            expected.append(k not in reference)
            reference.add(k)
        assert hs.add(keys).tolist() == expected
    assert len(hs) == len(reference)
