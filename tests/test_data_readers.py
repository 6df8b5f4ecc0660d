"""Parallel-data readers on small files built here and on the shared data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlembed.data import Pair, ntrex_documents, parse_spec, read_pairs
from mlembed.files import DataError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- spec parsing -------------------------------------------------------------------------------


def test_unknown_kind_lists_valid_kinds() -> None:
    with pytest.raises(DataError) as err:
        parse_spec("csv:foo.csv")
    assert all(kind in str(err.value) for kind in ["tsv", "pair", "tatoeba", "ntrex", "gettext", "jsonl", "hf"])


def test_spec_languages_are_normalized() -> None:
    spec = parse_spec("ntrex:/x/ntrex128:deu,zho-CN")
    assert (spec.kind, spec.where, spec.langs) == ("ntrex", "/x/ntrex128", ("de", "zh-Hans"))


# --- tsv -----------------------------------------------------------------------------------------


def test_tsv_header_names_languages_and_english_becomes_src(tmp_path: Path) -> None:
    p = write(tmp_path / "data.tsv", "deu\teng\nGuten Morgen.\tGood morning.\nDanke.\tThank you.\n")
    assert list(read_pairs(f"tsv:{p}")) == [
        Pair("Good morning.", "Guten Morgen.", "en", "de"),
        Pair("Thank you.", "Danke.", "en", "de"),
    ]


def test_tsv_header_with_several_languages_and_filter(tmp_path: Path) -> None:
    p = write(tmp_path / "multi.tsv", "eng\tdeu\tcmn_Hans\nYes.\tJa.\t是。\n")
    assert [(x.tgt, x.tgt_lang) for x in read_pairs(f"tsv:{p}")] == [("Ja.", "de"), ("是。", "zh-Hans")]
    assert [x.tgt for x in read_pairs(f"tsv:{p}", langs=["zh"])] == ["是。"]


def test_tsv_languages_from_filename_suffix_and_folder(tmp_path: Path) -> None:
    write(tmp_path / "d" / "eng-deu.tsv", "One.\tEins.\n")
    write(tmp_path / "d" / "x.en-fr.tsv", "One.\tUn.\tUne.\n")
    write(tmp_path / "d" / "notes.txt", "ignored")
    pairs = list(read_pairs(f"tsv:{tmp_path / 'd'}"))
    assert pairs == [
        Pair("One.", "Eins.", "en", "de"),
        Pair("One.", "Un.", "en", "fr"),
        Pair("One.", "Une.", "en", "fr"),
    ]
    assert [x.tgt_lang for x in read_pairs(f"tsv:{tmp_path / 'd'}", langs=["fra"])] == ["fr", "fr"]
    plain = write(tmp_path / "plain.tsv", "Two.\tDos.\n")
    assert list(read_pairs(f"tsv:{plain}@en-es")) == [Pair("Two.", "Dos.", "en", "es")]
    assert len(list(read_pairs(f"tsv:{tmp_path}/d/*.tsv"))) == 3


def test_tsv_missing_language_names_file(tmp_path: Path) -> None:
    p = write(tmp_path / "pairs.tsv", "One.\tEins.\n")
    with pytest.raises(DataError, match=r"pairs\.tsv: missing language"):
        list(read_pairs(f"tsv:{p}"))


def test_tsv_wrong_column_count_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path / "eng-deu.tsv", "One.\tEins.\nTwo.\tZwei.\tzu viel\nThree.\tDrei.\n")
    with pytest.raises(DataError, match=r"eng-deu\.tsv:2: expected 2 tab-separated columns, got 3"):
        list(read_pairs(f"tsv:{p}"))
    assert [x.tgt for x in read_pairs(f"tsv:{p}", on_bad_line="skip")] == ["Eins.", "Drei."]


def test_tsv_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path / "eng-deu.tsv", b"One.\tEins.\nTwo.\tZw\xffei.\nThree.\tDrei.\n")
    with pytest.raises(DataError, match=r"eng-deu\.tsv:2: invalid UTF-8"):
        list(read_pairs(f"tsv:{p}"))
    assert [x.tgt for x in read_pairs(f"tsv:{p}", on_bad_line="skip")] == ["Eins.", "Drei."]


# --- pair (Moses) --------------------------------------------------------------------------------


def test_pair_reader_suffix_and_at_language(tmp_path: Path) -> None:
    de = write(tmp_path / "train.de", "Hallo.\nTschüss.\n")
    en = write(tmp_path / "train.en", "Hello.\nBye.\n")
    assert list(read_pairs(f"pair:{de},{en}")) == [
        Pair("Hello.", "Hallo.", "en", "de"),
        Pair("Bye.", "Tschüss.", "en", "de"),
    ]
    a = write(tmp_path / "a.txt", "Hello.\n")
    b = write(tmp_path / "b.txt", "Hola.\n")
    assert list(read_pairs(f"pair:{a}@eng,{b}@spa")) == [Pair("Hello.", "Hola.", "en", "es")]
    assert list(read_pairs(f"pair:{a}@eng,{b}@spa", langs=["de"])) == []


def test_pair_line_count_mismatch_names_both_files_and_counts(tmp_path: Path) -> None:
    en = write(tmp_path / "t.en", "One.\nTwo.\nThree.\n")
    de = write(tmp_path / "t.de", "Eins.\nZwei.\n")
    with pytest.raises(DataError) as err:
        list(read_pairs(f"pair:{en},{de}"))
    msg = str(err.value)
    assert f"{en}:3:" in msg and f"{en} has 3 lines" in msg and f"{de} has 2 lines" in msg


def test_pair_invalid_utf8_skip_keeps_alignment(tmp_path: Path) -> None:
    en = write(tmp_path / "t.en", "One.\nTwo.\nThree.\n")
    de = write(tmp_path / "t.de", b"Eins.\nZ\xffwei.\nDrei.\n")
    with pytest.raises(DataError, match=r"t\.de:2: invalid UTF-8"):
        list(read_pairs(f"pair:{en},{de}"))
    assert [(x.src, x.tgt) for x in read_pairs(f"pair:{en},{de}", on_bad_line="skip")] == [
        ("One.", "Eins."),
        ("Three.", "Drei."),
    ]


def test_pair_missing_language(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt1", "x\n")
    with pytest.raises(DataError, match="missing language"):
        list(read_pairs(f"pair:{a},{a}"))


# --- tatoeba / ntrex -----------------------------------------------------------------------------


def test_tatoeba_shared(shared_data: Path) -> None:
    pairs = list(read_pairs(f"tatoeba:{shared_data / 'tatoeba'}:deu"))
    assert len(pairs) == 1000 and {(p.src_lang, p.tgt_lang) for p in pairs} == {("en", "de")}
    eng = (shared_data / "tatoeba" / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()
    assert pairs[0].src == eng[0] and pairs[-1].src == eng[-1]
    assert sum(1 for _ in read_pairs(f"tatoeba:{shared_data / 'tatoeba'}", langs=["de", "zh"])) == 2000


def test_tatoeba_missing_side_is_named(tmp_path: Path) -> None:
    write(tmp_path / "tatoeba.deu-eng.deu", "Hallo\n")
    with pytest.raises(DataError, match=r"tatoeba\.deu-eng\.eng not found"):
        list(read_pairs(f"tatoeba:{tmp_path}"))


def test_ntrex_shared(shared_data: Path) -> None:
    root = shared_data / "ntrex128"
    pairs = list(read_pairs(f"ntrex:{root}:deu"))
    assert len(pairs) == 1997 and pairs[0].tgt_lang == "de"
    assert {p.tgt_lang for p in read_pairs(f"ntrex:{root}:zh")} == {"zh-Hans", "zh-Hant"}
    docs = ntrex_documents(str(root))
    assert len(docs) == 1997 and docs[0] == "bbc.381790" and len(set(docs)) > 100


def test_ntrex_skips_english_references_unless_asked(shared_data: Path) -> None:
    root = shared_data / "ntrex128"
    from mlembed.data.ntrex import read_ntrex

    langs = {p.tgt_lang for p in read_ntrex(str(root), ["en", "fr"])}
    assert langs == {"en-GB", "en-IN", "en-US", "fr", "fr-CA"}
    assert not any(p.tgt_lang.startswith("en") for p in read_ntrex(str(root), ["fr", "fr-CA"]))


# --- jsonl ---------------------------------------------------------------------------------------


def test_jsonl_reader_keys_and_suffix(tmp_path: Path) -> None:
    p = write(
        tmp_path / "p.jsonl",
        '{"src": "Ja.", "tgt": "Yes.", "src_lang": "deu", "tgt_lang": "eng"}\n\n'
        '{"src": "No.", "tgt": "Non.", "src_lang": "en", "tgt_lang": "fr", "id": 7}\n',
    )
    assert list(read_pairs(f"jsonl:{p}")) == [Pair("Yes.", "Ja.", "en", "de"), Pair("No.", "Non.", "en", "fr")]
    assert list(read_pairs(f"jsonl:{p}", langs=["fr"])) == [Pair("No.", "Non.", "en", "fr")]
    bare = write(tmp_path / "bare.jsonl", '{"src": "Yes.", "tgt": "Sí."}\n')
    assert list(read_pairs(f"jsonl:{bare}@en-es")) == [Pair("Yes.", "Sí.", "en", "es")]
    with pytest.raises(DataError, match=r"bare\.jsonl:1: bad JSON line: missing language"):
        list(read_pairs(f"jsonl:{bare}"))


def test_jsonl_bad_json_names_file_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path / "x.en-de.jsonl", '{"src": "One.", "tgt": "Eins."}\n{"src": "Two.", "tgt": \n{"tgt": "Drei."}\n'
    )
    with pytest.raises(DataError, match=r"x\.en-de\.jsonl:2: bad JSON line"):
        list(read_pairs(f"jsonl:{p}"))
    assert [x.tgt for x in read_pairs(f"jsonl:{p}", on_bad_line="skip")] == ["Eins."]
    missing = write(tmp_path / "m.en-de.jsonl", '{"tgt": "Drei."}\n')
    with pytest.raises(DataError, match=r"m\.en-de\.jsonl:1: bad JSON line: missing key 'src'"):
        list(read_pairs(f"jsonl:{missing}"))


# --- hf (offline, a dataset saved here) ------------------------------------------------------------


def test_hf_layouts_from_saved_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    trans = tmp_path / "trans"
    datasets.Dataset.from_dict(
        {
            "translation": [
                {"de": "Hallo.", "en": "Hello.", "fr": "Bonjour."},
                {"de": "Ja.", "en": "Yes.", "fr": "Oui."},
            ]
        }
    ).save_to_disk(str(trans))
    assert list(read_pairs(f"hf:{trans}", langs=["fr"])) == [
        Pair("Hello.", "Bonjour.", "en", "fr"),
        Pair("Yes.", "Oui.", "en", "fr"),
    ]
    assert len(list(read_pairs(f"hf:{trans}"))) == 4

    st = tmp_path / "st"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"english": ["Thanks."], "non_english": ["Danke."]})}
    ).save_to_disk(str(st))
    assert list(read_pairs(f"hf:{st}::train@en-de")) == [Pair("Thanks.", "Danke.", "en", "de")]
    with pytest.raises(DataError, match="missing language"):
        list(read_pairs(f"hf:{st}"))
    with pytest.raises(DataError, match="no split 'test'"):
        list(read_pairs(f"hf:{st}::test@en-de"))

    srctgt = tmp_path / "srctgt"
    datasets.Dataset.from_dict(
        {"src": ["Gracias."], "tgt": ["Thanks."], "src_lang": ["spa"], "tgt_lang": ["eng"]}
    ).save_to_disk(str(srctgt))
    assert list(read_pairs(f"hf:{srctgt}")) == [Pair("Thanks.", "Gracias.", "en", "es")]

    other = tmp_path / "other"
    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(other))
    with pytest.raises(DataError, match="no known column layout"):
        list(read_pairs(f"hf:{other}"))


def test_hf_hub_name_offline_is_a_clear_error() -> None:
    pytest.importorskip("datasets")
    with pytest.raises(DataError, match="surely-not-cached-dataset: cannot load this Hugging Face dataset"):
        list(read_pairs("hf:someone/surely-not-cached-dataset"))


def test_spec_languages_and_langs_argument_combine(shared_data: Path) -> None:
    root = shared_data / "ntrex128"
    assert {p.tgt_lang for p in read_pairs(f"ntrex:{root}:deu,fra", langs=["de"])} == {"de"}
    assert {p.tgt_lang for p in read_pairs(f"ntrex:{root}:zho-TW", langs="zh,de")} == {"zh-Hant"}
    assert {p.tgt_lang for p in read_pairs(f"ntrex:{root}:zh", langs=["zho-CN"])} == {"zh-Hans"}
    with pytest.raises(DataError, match="do not overlap"):
        list(read_pairs(f"ntrex:{root}:deu", langs=["fr"]))
