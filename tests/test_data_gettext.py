"""gettext catalogs as parallel data: a catalog built here (.po and .mo) and the system's own."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest

from mlembed.data import Pair, read_pairs
from mlembed.data.gettext_catalogs import message_pairs, placeholders, strip_accelerators
from mlembed.files import DataError

SYSTEM_DE = Path("/usr/share/locale/de/LC_MESSAGES/coreutils.mo")


def build_catalog(path: Path, entries: list[polib.POEntry]) -> Path:
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "de"}
    for entry in entries:
        po.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mo":
        po.save_as_mofile(str(path))
    else:
        po.save(str(path))
    return path


ENTRIES = [
    polib.POEntry(msgid="Open the file", msgstr="Die Datei öffnen"),
    polib.POEntry(msgid="_Save As", msgstr="Speichern _unter"),
    polib.POEntry(msgid="Print", msgstr="Drucken", msgctxt="menu"),
    polib.POEntry(msgid="%d file", msgid_plural="%d files", msgstr_plural={0: "%d Datei", 1: "%d Dateien"}),
    polib.POEntry(msgid="Fuzzy one", msgstr="Unscharf", flags=["fuzzy"]),
    polib.POEntry(msgid="Untranslated", msgstr=""),
    polib.POEntry(msgid="Linux", msgstr="Linux"),
    polib.POEntry(msgid="Copy %s to %s", msgstr="%s kopieren"),
    polib.POEntry(msgid="Copied %1$s files to %2$s", msgstr="%2$s: %1$s Dateien kopiert"),
    polib.POEntry(msgid="<b>Warning:</b> disk full", msgstr="<b>Warnung:</b> Platte voll"),
    polib.POEntry(msgid="<b>Note</b>", msgstr="Hinweis"),
    polib.POEntry(
        msgid="  -a, --all     show all\n  -l            long format\n",
        msgstr="  -a, --all     alle zeigen\n  -l            langes Format\n",
    ),
    polib.POEntry(msgid="First line\nsecond line\n\nAnother paragraph", msgstr="Ein einziger Absatz"),
    polib.POEntry(msgid="--color=WHEN  colorize the output", msgstr="--color=WHEN  die Ausgabe einfärben"),
    polib.POEntry(msgid="Wrapped prose\nover two lines.", msgstr="Umbrochener Text über\nzwei Zeilen."),
]
EXPECTED = [
    ("Open the file", "Die Datei öffnen"),
    ("Save As", "Speichern unter"),
    ("Print", "Drucken"),
    ("Copied %1$s files to %2$s", "%2$s: %1$s Dateien kopiert"),
    ("<b>Warning:</b> disk full", "<b>Warnung:</b> Platte voll"),
    ("show all", "alle zeigen"),
    ("long format", "langes Format"),
    ("colorize the output", "die Ausgabe einfärben"),
    ("Wrapped prose over two lines.", "Umbrochener Text über zwei Zeilen."),
]


@pytest.mark.parametrize("suffix", [".po", ".mo"])
def test_catalog_rules(tmp_path: Path, suffix: str) -> None:
    build_catalog(tmp_path / "de" / "LC_MESSAGES" / f"app{suffix}", ENTRIES)
    pairs = list(read_pairs(f"gettext:{tmp_path}"))
    assert sorted((p.src, p.tgt) for p in pairs) == sorted(EXPECTED)
    assert {(p.src_lang, p.tgt_lang) for p in pairs} == {("en", "de")}


def test_locales_and_language_filter(tmp_path: Path) -> None:
    one = [polib.POEntry(msgid="Open the file", msgstr="X")]
    build_catalog(tmp_path / "zh_CN" / "LC_MESSAGES" / "app.mo", one)
    build_catalog(tmp_path / "sr@latin" / "LC_MESSAGES" / "app.mo", one)
    build_catalog(tmp_path / "po" / "pt_BR.po", one)
    build_catalog(tmp_path / "en_GB" / "LC_MESSAGES" / "app.mo", one)
    build_catalog(tmp_path / "fi" / "LC_TIME" / "app.mo", one)  # a category other than LC_MESSAGES: skipped
    assert sorted(p.tgt_lang for p in read_pairs(f"gettext:{tmp_path}")) == ["pt-BR", "sr-Latn", "zh-Hans"]
    assert [p.tgt_lang for p in read_pairs(f"gettext:{tmp_path}:zh")] == ["zh-Hans"]
    assert [p.tgt_lang for p in read_pairs(f"gettext:{tmp_path}", langs=["por"])] == ["pt-BR"]
    assert [p.tgt_lang for p in read_pairs(f"gettext:{tmp_path}:en")] == ["en-GB"]


def test_broken_catalog_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "de" / "LC_MESSAGES" / "bad.mo"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not a catalog at all")
    with pytest.raises(DataError, match=r"bad\.mo"):
        list(read_pairs(f"gettext:{tmp_path}"))
    assert list(read_pairs(f"gettext:{tmp_path}", on_bad_line="skip")) == []


def test_placeholders_and_accelerators() -> None:
    assert placeholders("%1$s of %lu") == placeholders("%lu von %s")
    assert placeholders("%s") != placeholders("%d")
    assert placeholders("{0} and {name}") == placeholders("{name} und {0}")
    assert placeholders('<a href="x">here</a>') == placeholders('<a href="y">hier</a>')
    assert placeholders("100 % sure") == placeholders("sicher")
    assert strip_accelerators("&File") == "File" and strip_accelerators("Fish &amp; Chips") == "Fish &amp; Chips"
    assert strip_accelerators("ファイル(_F)") == "ファイル"
    assert strip_accelerators("file_name_x") == "file_name_x"
    assert list(message_pairs("Copy %s", "Kopiere %d")) == []


@pytest.mark.skipif(not SYSTEM_DE.is_file(), reason=f"{SYSTEM_DE} not on this machine")
def test_system_catalogs_german() -> None:
    pairs = read_pairs("gettext:system:de")
    n = 0
    found = set()
    wanted = {
        Pair("do not ignore entries starting with .", "Einträge, die mit . beginnen, nicht verstecken", "en", "de"),
        Pair("write error", "Schreibfehler", "en", "de"),
    }
    for pair in pairs:
        n += 1
        if pair in wanted:
            found.add(pair)
    assert found == wanted  # coreutils `ls --help` line and a plain message, aligned
    assert n > 5000
