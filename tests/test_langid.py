"""Language identification (mlembed.langid) on real Tatoeba sentences, and the cleaning rule built on it."""

from __future__ import annotations

from pathlib import Path

from mlembed.cli import main
from mlembed.data import Pair, read_pairs
from mlembed.data.cleaning import CleanOptions, CleanStats, clean_pairs
from mlembed.langid import identify, in_language, supported_languages

TATOEBA = ["ara", "ces", "cmn", "deu", "fra", "hin", "jpn", "rus", "spa", "tur", "ukr", "vie"]


def _lines(path: Path, n: int) -> list[str]:
    return [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()][:n]


def test_each_tatoeba_language_is_kept_and_english_put_in_its_place_is_caught(shared_data):
    """Real Tatoeba sentences (short): their own language's lines are kept (judged in, or too short to judge), and
    most English lines claimed to be in that language are caught."""
    for code in TATOEBA:
        own = _lines(shared_data / "tatoeba" / f"tatoeba.{code}-eng.{code}", 100)
        english = _lines(shared_data / "tatoeba" / f"tatoeba.{code}-eng.eng", 100)
        kept = sum(in_language(x, code) is not False for x in own) / len(own)
        caught = sum(in_language(x, code) is False for x in english) / len(english)
        assert kept >= 0.97, (code, kept)  # 0.99-1.00 measured
        assert caught >= 0.8, (code, caught)  # 0.86-0.99 measured; the rest are under 15 characters


def test_identify_names_the_language_and_unknown_languages_are_not_judged():
    assert identify("Le chat dort sur le canapé.") == "fr" and identify("猫はソファで寝ています。") == "ja"
    assert "tlh" not in supported_languages()
    assert in_language("nuqneH", "tlh") is None


def test_check_lang_drops_a_side_in_another_language_and_counts_it(shared_data):
    pairs = list(read_pairs(f"tatoeba:{shared_data / 'tatoeba'}:deu"))[:200]
    english = [p.src for p in pairs]
    broken = [Pair(p.src, english[(i + 7) % len(english)], p.src_lang, p.tgt_lang) for i, p in enumerate(pairs[:20])]
    stats = CleanStats()
    kept = list(clean_pairs(pairs[20:] + broken, CleanOptions(check_lang=True), stats))
    assert stats.totals["wrong_language"] >= 18  # English text on the German side (20 of 20 measured)
    assert len(kept) >= 0.95 * 180  # real German pairs stay
    assert not {p.tgt for p in kept} & {p.tgt for p in broken}
    assert "wrong_language" in stats.summary()
    assert "wrong_language" not in CleanStats().summary()  # the column shows only when the rule ran


def test_data_cli_check_lang(tmp_path, capsys):
    rows = [
        "Good morning.\tGuten Morgen.",
        "Where is the station?\tWhere is the station?",
        "I am hungry.\tIch habe Hunger.",
    ]
    (tmp_path / "p.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "kept.tsv"
    assert main(["data", f"tsv:{tmp_path / 'p.tsv'}@en-de", "--check-lang", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrong_language" in printed
    assert out.read_text(encoding="utf-8").splitlines() == [
        "en\tde",  # the header write_tsv puts first
        "Good morning.\tGuten Morgen.",
        "I am hungry.\tIch habe Hunger.",
    ]
