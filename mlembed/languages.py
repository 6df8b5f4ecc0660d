"""Language tags: one normal form (BCP-47 style) for the many codes parallel corpora use.

Corpora name languages differently: Tatoeba/LASER use ISO 639-3 (``deu``, ``cmn``), NTREX adds
scripts and regions (``zho-CN``, ``aze-Latn``), tatoeba-challenge writes ``cmn_Hans``, gettext
locales look like ``pt_BR``, ``sr@latin`` or ``de_DE.UTF-8``.  :func:`normalize_lang` maps all of
them to short BCP-47 tags (``de``, ``zh-Hans``, ``az-Latn``, ``pt-BR``, ``sr-Latn``):

* the language subtag becomes ISO 639-1 where one exists; individual languages of a
  macrolanguage that stand for it in practice are folded into it, as CLDR does
  (``cmn`` -> ``zh``, ``arb`` -> ``ar``, ``pes`` -> ``fa``, ``zsm`` -> ``ms``, ``prs`` -> ``fa-AF``);
* a script is dropped when it is the language's usual one (``jpn_Hira`` -> ``ja``,
  ``kor_Hang`` -> ``ko``) and kept otherwise (``aze-Latn`` -> ``az-Latn``);
* Chinese regions become scripts (``zh_CN`` -> ``zh-Hans``, ``zh_TW`` -> ``zh-Hant``,
  ``zh_HK`` -> ``zh-Hant-HK``); other regions are kept (``pt_BR`` -> ``pt-BR``);
* gettext modifiers become scripts or variants (``@latin`` -> ``Latn``, ``@cyrillic`` -> ``Cyrl``,
  ``@valencia`` -> ``valencia``); unknown ones become private-use subtags (``en@quot`` ->
  ``en-x-quot``); a codeset (``.UTF-8``) is dropped.

Unknown but valid-looking codes pass through with the language subtag lower-cased.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# ISO 639-1 -> ISO 639-3 (the 184 two-letter codes; from Debian iso-codes' iso_639-3.json).
_ISO1_TO_3 = dict(
    item.split(":")
    for item in (
        "aa:aar ab:abk ae:ave af:afr ak:aka am:amh an:arg ar:ara as:asm av:ava ay:aym az:aze ba:bak be:bel "
        "bg:bul bi:bis bm:bam bn:ben bo:bod br:bre bs:bos ca:cat ce:che ch:cha co:cos cr:cre cs:ces cu:chu "
        "cv:chv cy:cym da:dan de:deu dv:div dz:dzo ee:ewe el:ell en:eng eo:epo es:spa et:est eu:eus fa:fas "
        "ff:ful fi:fin fj:fij fo:fao fr:fra fy:fry ga:gle gd:gla gl:glg gn:grn gu:guj gv:glv ha:hau he:heb "
        "hi:hin ho:hmo hr:hrv ht:hat hu:hun hy:hye hz:her ia:ina id:ind ie:ile ig:ibo ii:iii ik:ipk io:ido "
        "is:isl it:ita iu:iku ja:jpn jv:jav ka:kat kg:kon ki:kik kj:kua kk:kaz kl:kal km:khm kn:kan ko:kor "
        "kr:kau ks:kas ku:kur kv:kom kw:cor ky:kir la:lat lb:ltz lg:lug li:lim ln:lin lo:lao lt:lit lu:lub "
        "lv:lav mg:mlg mh:mah mi:mri mk:mkd ml:mal mn:mon mr:mar ms:msa mt:mlt my:mya na:nau nb:nob nd:nde "
        "ne:nep ng:ndo nl:nld nn:nno no:nor nr:nbl nv:nav ny:nya oc:oci oj:oji om:orm or:ori os:oss pa:pan "
        "pi:pli pl:pol ps:pus pt:por qu:que rm:roh rn:run ro:ron ru:rus rw:kin sa:san sc:srd sd:snd se:sme "
        "sg:sag sh:hbs si:sin sk:slk sl:slv sm:smo sn:sna so:som sq:sqi sr:srp ss:ssw st:sot su:sun sv:swe "
        "sw:swa ta:tam te:tel tg:tgk th:tha ti:tir tk:tuk tl:tgl tn:tsn to:ton tr:tur ts:tso tt:tat tw:twi "
        "ty:tah ug:uig uk:ukr ur:urd uz:uzb ve:ven vi:vie vo:vol wa:wln wo:wol xh:xho yi:yid yo:yor za:zha "
        "zh:zho zu:zul"
    ).split()
)
_ISO3_TO_1 = {three: one for one, three in _ISO1_TO_3.items()}
# ISO 639-2/B codes (``ger``, ``fre``, ...) and CLDR language aliases: individual languages that
# stand for their macrolanguage, deprecated codes.  Values may carry a script or region.
_ALIASES = {
    "alb": "sq",
    "arm": "hy",
    "baq": "eu",
    "bur": "my",
    "chi": "zh",
    "cze": "cs",
    "dut": "nl",
    "fre": "fr",
    "geo": "ka",
    "ger": "de",
    "gre": "el",
    "ice": "is",
    "mac": "mk",
    "mao": "mi",
    "may": "ms",
    "per": "fa",
    "rum": "ro",
    "slo": "sk",
    "tib": "bo",
    "wel": "cy",
    "cmn": "zh",
    "arb": "ar",
    "pes": "fa",
    "prs": "fa-AF",
    "zsm": "ms",
    "swh": "sw",
    "ekk": "et",
    "lvs": "lv",
    "khk": "mn",
    "uzn": "uz",
    "azj": "az",
    "plt": "mg",
    "ydd": "yi",
    "gaz": "om",
    "quz": "qu",
    "npi": "ne",
    "ory": "or",
    "nor": "nb",
    "no": "nb",
    "mo": "ro",
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "sh": "sr-Latn",
    "hbs": "sr-Latn",
}
# The script a language is normally written in (dropped from tags, like IANA's Suppress-Script).
_DEFAULT_SCRIPT = {
    **dict.fromkeys(
        "af ay bs ca cs cy da de en eo es et eu fi fil fj fo fr fy ga gd gl gn ha hr ht hu ia id ie ig io is "
        "it jv la lb lt lv mg mi ms mt nb nl nn ny om pl pt qu ro rw sk sl sm sn so sq st sv sw tl tn to tr "
        "ts tk ve vi wa wo xh yo zu".split(),
        "Latn",
    ),
    **dict.fromkeys("ru uk be bg mk kk ky tg mn tt ba cv ce os".split(), "Cyrl"),
    **dict.fromkeys("ar fa ur ps ckb".split(), "Arab"),
    **dict.fromkeys("he yi".split(), "Hebr"),
    **dict.fromkeys("hi mr ne".split(), "Deva"),
    "ko": "Kore",
    "el": "Grek",
    "grc": "Grek",
    "got": "Goth",
    "lzh": "Hani",
    "bn": "Beng",
    "th": "Thai",
    "km": "Khmr",
    "lo": "Laoo",
    "my": "Mymr",
    "ka": "Geor",
    "hy": "Armn",
    "am": "Ethi",
    "ti": "Ethi",
    "pa": "Guru",
    "gu": "Gujr",
    "ta": "Taml",
    "te": "Telu",
    "kn": "Knda",
    "ml": "Mlym",
    "si": "Sinh",
    "bo": "Tibt",
    "dz": "Tibt",
    "dv": "Thaa",
    "or": "Orya",
    "as": "Beng",
}
_EQUIVALENT_SCRIPTS = {"ja": {"Jpan", "Hira", "Kana", "Hani", "Hrkt"}, "ko": {"Kore", "Hang"}}
# Regions that imply a script (and, for Chinese, are then dropped: zh_CN -> zh-Hans).
_REGION_SCRIPT = {
    ("zh", "CN"): ("Hans", True),
    ("zh", "SG"): ("Hans", False),
    ("zh", "TW"): ("Hant", True),
    ("zh", "HK"): ("Hant", False),
    ("zh", "MO"): ("Hant", False),
    ("pa", "PK"): ("Arab", False),
    ("az", "IR"): ("Arab", False),
}
# gettext ``@modifier`` -> script or registered variant.
_MODIFIERS = {
    "latin": "Latn",
    "latn": "Latn",
    "cyrillic": "Cyrl",
    "cyrl": "Cyrl",
    "iqtelif": "Latn",
    "shaw": "Shaw",
    "devanagari": "Deva",
    "arabic": "Arab",
    "valencia": "valencia",
    "ije": "ijekavsk",
}
_LASER_CODES = {"zh": "cmn"}  # LASER's Tatoeba files call Mandarin ``cmn``

_CODE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*(?:@[A-Za-z0-9]+)?(?:\.[A-Za-z0-9-]+)?$")


def looks_like_lang(code: str) -> bool:
    """True when ``code`` has the shape of a language code or locale (``de``, ``cmn_Hans``, ``sr@latin``).

    Example:
        >>> looks_like_lang("pt_BR"), looks_like_lang("Hello world")
        (True, False)
    """
    return bool(_CODE.match(code.strip()))


def is_known_language(code: str) -> bool:
    """True when the language subtag of ``code`` is an ISO 639-1/639-3 code in this module's tables.

    Example:
        >>> is_known_language("eng"), is_known_language("cmn_Hans"), is_known_language("yes")
        (True, True, False)
    """
    if not looks_like_lang(code):
        return False
    primary = normalize_lang(code).split("-")[0]
    return primary in _ISO1_TO_3 or primary in _DEFAULT_SCRIPT


@functools.lru_cache(maxsize=8192)
def normalize_lang(code: str) -> str:
    """Map a language code or locale to a short BCP-47 tag (see the module docstring for the rules).

    Example:
        >>> [normalize_lang(c) for c in ["deu", "cmn_Hans", "zh_TW", "pt_BR", "sr@latin", "aze-Latn", "jpn_Hira"]]
        ['de', 'zh-Hans', 'zh-Hant', 'pt-BR', 'sr-Latn', 'az-Latn', 'ja']
    """
    text = code.strip()
    if not text:
        raise ValueError("empty language code")
    text = text.split(".", 1)[0]  # de_DE.UTF-8 -> de_DE
    modifier = None
    if "@" in text:
        text, modifier = text.split("@", 1)
    parts = [p for p in re.split(r"[-_]", text) if p]
    if not parts:
        raise ValueError(f"not a language code: {code!r}")
    language = parts[0].lower()
    script = region = None
    variants: list[str] = []
    private: list[str] = []
    rest = iter(parts[1:])
    for part in rest:
        if part.lower() == "x":
            private.extend(p.lower() for p in rest)
            break
        if len(part) == 4 and part.isalpha() and script is None and region is None and not variants:
            script = part.title()
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            region = part.upper()
        else:
            variants.append(part.lower())
    if modifier:
        mapped = _MODIFIERS.get(modifier.lower())
        if mapped is None:
            private.append(modifier.lower())
        elif len(mapped) == 4 and mapped[0].isupper():
            script = mapped
        else:
            variants.append(mapped)

    alias = _ALIASES.get(language) or _ISO3_TO_1.get(language)
    if alias:
        alias_parts = alias.split("-")
        language = alias_parts[0]
        for extra in alias_parts[1:]:
            if len(extra) == 4:
                script = script or extra
            else:
                region = region or extra
    if region and (language, region) in _REGION_SCRIPT:
        implied, drop_region = _REGION_SCRIPT[(language, region)]
        script = script or implied
        if drop_region and script == implied:
            region = None
    if script and (script == _DEFAULT_SCRIPT.get(language) or script in _EQUIVALENT_SCRIPTS.get(language, ())):
        script = None
    tag = [language] + ([script] if script else []) + ([region] if region else []) + variants
    if private:
        tag += ["x"] + private
    return "-".join(tag)


def to_iso639_3(tag: str) -> str:
    """The ISO 639-3 code of a tag's language, as LASER's Tatoeba files name languages.

    Only the language is kept (script and region are dropped).  Chinese maps to ``cmn``
    (Mandarin, LASER's code) rather than the macrolanguage ``zho``; other two-letter languages map
    to their ISO 639-3 (= 639-2/T) code, e.g. ``ar`` -> ``ara``, ``fa`` -> ``fas``.  Codes without a
    two-letter form come back unchanged.

    Example:
        >>> [to_iso639_3(t) for t in ["de", "zh-Hans", "ar", "pt-BR", "fil"]]
        ['deu', 'cmn', 'ara', 'por', 'fil']
    """
    language = normalize_lang(tag).split("-")[0]
    return _LASER_CODES.get(language) or _ISO1_TO_3.get(language, language)


def lang_matches(tag: str, wanted: str) -> bool:
    """True when ``tag`` is ``wanted`` or more specific than it (RFC 4647 basic filtering).

    Both sides are normalized first, so ISO 639-3 codes and locales work too.

    Example:
        >>> lang_matches("zh-Hans", "zh"), lang_matches("pt-BR", "por"), lang_matches("pt", "pt-BR")
        (True, True, False)
    """
    tag, wanted = normalize_lang(tag), normalize_lang(wanted)
    return tag == wanted or tag.startswith(wanted + "-")


def matches_any(tag: str, wanted: list[str] | tuple[str, ...] | None) -> bool:
    """True when ``wanted`` is empty/None or ``tag`` matches one of its entries.

    Example:
        >>> matches_any("de", ["fr", "deu"]), matches_any("de", None)
        (True, True)
    """
    return not wanted or any(lang_matches(tag, w) for w in wanted)


_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")


def length_units(text: str) -> int:
    """Length in Latin-letter equivalents, comparable across scripts (used by the ratio filter).

    CJK ideographs count 3 (a Chinese character carries about a word), other East Asian wide or
    fullwidth characters (kana, Hangul, fullwidth forms) 2, everything else 1.

    Example:
        >>> length_units("The weather is lovely today."), length_units("今天天气很好。"), length_units("Straße")
        (28, 20, 6)
    """
    if text.isascii() or max(text) < "\u1100":  # no wide character below U+1100
        return len(text)
    return len(text) + len(_wide_chars().findall(text)) + len(_HAN.findall(text))


@functools.lru_cache(maxsize=1)
def _wide_chars() -> re.Pattern:
    """A character class of every East Asian Wide/Fullwidth code point (built once from unicodedata)."""
    ranges, start = [], None
    for cp in range(0x1100, 0x40000):
        char = chr(cp)
        wide = unicodedata.east_asian_width(char) in "WF" and unicodedata.category(char) != "Cn"
        if wide and start is None:
            start = cp
        elif not wide and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return re.compile("[" + "".join(ranges) + "]")
