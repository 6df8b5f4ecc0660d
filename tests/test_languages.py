"""Language tag normalisation: the codes real corpora use map to one BCP-47 form."""

from __future__ import annotations

import pytest

from mlembed.languages import lang_matches, normalize_lang, to_iso639_3


@pytest.mark.parametrize(
    "code, tag",
    [
        ("deu", "de"),
        ("eng", "en"),
        ("cmn", "zh"),
        ("zho-CN", "zh-Hans"),
        ("zh_CN", "zh-Hans"),
        ("cmn_Hans", "zh-Hans"),
        ("zh_TW", "zh-Hant"),
        ("zho-TW", "zh-Hant"),
        ("zh_HK", "zh-Hant-HK"),
        ("pt_BR", "pt-BR"),
        ("por-BR", "pt-BR"),
        ("sr@latin", "sr-Latn"),
        ("srp-Latn", "sr-Latn"),
        ("aze-Latn", "az-Latn"),
        ("arb", "ar"),
        ("ara", "ar"),
        ("jpn_Hira", "ja"),
        ("kor_Hang", "ko"),
        ("de_DE.UTF-8", "de-DE"),
        ("ger", "de"),
        ("ca@valencia", "ca-valencia"),
        ("en@quot", "en-x-quot"),
        ("uz@cyrillic", "uz-Cyrl"),
        ("tgk-Cyrl", "tg"),
        ("prs", "fa-AF"),
        ("no", "nb"),
        ("pa_PK", "pa-Arab-PK"),
        ("toki_Latn", "toki-Latn"),
        ("xyz", "xyz"),
        ("yue_Hant", "yue-Hant"),
        ("DE", "de"),
    ],
)
def test_normalize_lang(code: str, tag: str) -> None:
    assert normalize_lang(code) == tag


def test_normalize_is_idempotent() -> None:
    for code in ["zh_TW", "sr@latin", "pt_BR", "aze-Latn", "en@quot", "pa_PK", "zh_HK"]:
        tag = normalize_lang(code)
        assert normalize_lang(tag) == tag


def test_empty_code_is_an_error() -> None:
    with pytest.raises(ValueError):
        normalize_lang("  ")


def test_to_iso639_3() -> None:
    assert [to_iso639_3(t) for t in ["de", "zh-Hans", "zh", "ar", "ja", "pt-BR", "fil"]] == [
        "deu",
        "cmn",
        "cmn",
        "ara",
        "jpn",
        "por",
        "fil",
    ]


def test_lang_matches() -> None:
    assert lang_matches("zh-Hans", "zh") and lang_matches("pt-BR", "pt") and lang_matches("de", "deu")
    assert lang_matches("zh-Hant", "zho-TW")
    assert not lang_matches("pt", "pt-BR")
    assert not lang_matches("zh-Hans", "zh-Hant")
    assert not lang_matches("de", "da")
