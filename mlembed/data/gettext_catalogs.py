"""``gettext:DIR|system[:lang,lang]`` — translation catalogs (``.mo`` and ``.po``) as parallel data.

Every Debian-like machine carries ~3,700 compiled catalogs under ``/usr/share/locale``
(``LOCALE/LC_MESSAGES/DOMAIN.mo``): English UI messages (``msgid``) and their human
translations (``msgstr``), the same kind of text as OPUS's GNOME/KDE/Ubuntu corpora.
``.mo`` files are parsed by the standard library (:class:`gettext.GNUTranslations`, with
:func:`polib.mofile` for the few whose headers it rejects); ``.po`` files by :func:`polib.pofile`.

What becomes a pair:

* skipped: the header entry, plural entries, fuzzy and obsolete entries (``.po``), untranslated
  ones, and pairs that are equal once cleaned up (``msgid == msgstr``); English locales
  (``en_GB``, ``en@quot``...) are skipped unless ``langs`` asks for English;
* message contexts (``msgctxt``) are dropped from the text: the pair is kept, the context is not;
* a message with several lines (``--help`` blocks) is split into items -- each option line
  (starting with ``-``) with its continuation lines is one item, other runs of lines are joined
  into one paragraph -- and the items are paired in order when both sides have the same number;
  otherwise the message is dropped (a misaligned split would teach wrong pairs).  When both sides
  of an item (or of a one-line message) start with the same option column (``-a, --all``), it is
  removed, leaving the description;
* accelerator markers are removed: ``_File`` / ``&File`` (a single marker before a letter) and
  the ``(_F)`` suffix style of CJK locales;
* placeholders must agree: the multisets of printf conversions (``%s``, ``%d``, ``%1$s`` counts as
  ``%s``, ``%(name)s``), Qt ``%1``, Python ``{0}`` / ``{name}``, markup tags (``<b>``, ``</b>``) and
  entities (``&amp;``) must be equal on both sides, else the pair is dropped;
* the locale comes from the folder above ``LC_MESSAGES``, else the file name (``po/de.po``), else
  its folder, and is normalized (``zh_CN`` -> ``zh-Hans``, ``sr@latin`` -> ``sr-Latn``); catalogs in
  other categories (``LC_TIME/coreutils.mo``, a copy of the ``LC_MESSAGES`` one) are skipped.
"""

from __future__ import annotations

import gettext as stdlib_gettext
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mlembed.data.base import Pair
from mlembed.files import DataError, OnBadLine
from mlembed.languages import lang_matches, looks_like_lang, matches_any, normalize_lang

SYSTEM_LOCALE_DIR = "/usr/share/locale"

_PLACEHOLDER = re.compile(
    r"%\([A-Za-z0-9_.-]+\)[-+#0]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"  # %(name)s
    r"|%%"
    r"|%(?:\d+\$)?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(hh|h|ll|l|L|q|j|z|Z|t)?([diouxXeEfFgGaAcCsSpnm])"  # printf
    r"|%L?[1-9]\d?"  # Qt %1
    r"|\{[A-Za-z0-9_]*(?:[!:][^{}\s]*)?\}"  # {0} {name} {:d}
    r"|</?([A-Za-z][A-Za-z0-9]*)\b[^<>]*>"  # markup tags
    r"|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"  # entities
)
_MAYBE_PLACEHOLDER = re.compile(r"[%{<&]")
_CJK_ACCEL = re.compile(r"\s*\(\s*[_&][A-Za-z0-9]\s*\)")
_AMP_ACCEL = re.compile(r"&(?![A-Za-z]+;|#\d+;|#x[0-9A-Fa-f]+;)(?=\w)")
_UNDERSCORE_ACCEL = re.compile(r"_(?=\w)")
_OPTION_LINE = re.compile(r"^\s*(-\S.*?)(?:\s{2,}(.*))?$")


def placeholders(text: str) -> Counter:
    """The multiset of placeholders in ``text`` (printf conversions reduced to length + type).

    Example:
        >>> sorted(placeholders("%1$s has %d <b>new</b> files in {0} &amp; %(dir)s").elements())
        ['%(dir)s', '%d', '%s', '&amp;', '</b>', '<b>', '{0}']
    """
    found: Counter = Counter()
    for m in _PLACEHOLDER.finditer(text):
        if m.group(2):  # printf: drop position, flags, width, precision
            found["%" + (m.group(1) or "") + m.group(2)] += 1
        elif m.group(3):  # tag: name only, attributes may be translated
            found[("</" if m.group(0).startswith("</") else "<") + m.group(3).lower() + ">"] += 1
        else:
            found[m.group(0)] += 1
    return found


def _same_placeholders(a: str, b: str) -> bool:
    if not (_MAYBE_PLACEHOLDER.search(a) or _MAYBE_PLACEHOLDER.search(b)):
        return True  # fast path: no placeholder can be present
    return placeholders(a) == placeholders(b)


def strip_accelerators(text: str) -> str:
    """Remove keyboard accelerator markers: ``_File``, ``&File`` (when single) and a ``(_F)`` suffix.

    Example:
        >>> strip_accelerators("_Open File"), strip_accelerators("打开(_O)…"), strip_accelerators("Tom & Jerry")
        ('Open File', '打开…', 'Tom & Jerry')
    """
    if "_" not in text and "&" not in text:
        return text
    text = _CJK_ACCEL.sub("", text)
    if len(_AMP_ACCEL.findall(text)) == 1:
        text = _AMP_ACCEL.sub("", text)
    if text.count("_") == 1 and _UNDERSCORE_ACCEL.search(text):
        text = text.replace("_", "")
    return text


def _items(text: str) -> list[list[str]]:
    """Split a message into items: option lines (+ continuations) and prose paragraphs."""
    items: list[list[str]] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            current = None
        elif stripped.startswith("-") or current is None:
            current = [line]
            items.append(current)
        else:
            current.append(line)
    return items


def _item_texts(items_a: list[list[str]], items_b: list[list[str]]) -> Iterator[tuple[str, str]]:
    for a, b in zip(items_a, items_b):
        opt_a, opt_b = _OPTION_LINE.match(a[0]), _OPTION_LINE.match(b[0])
        if opt_a and opt_b and " ".join(opt_a.group(1).split()) == " ".join(opt_b.group(1).split()):
            a = [opt_a.group(2) or "", *a[1:]]
            b = [opt_b.group(2) or "", *b[1:]]
        yield " ".join(s.strip() for s in a if s.strip()), " ".join(s.strip() for s in b if s.strip())


def message_pairs(msgid: str, msgstr: str) -> Iterator[tuple[str, str]]:
    """The aligned (English, translation) texts one catalog message yields, after the rules above.

    Example:
        >>> list(message_pairs("  -a, --all     do not ignore entries\\n  -l    use a long listing format\\n",
        ...                    "  -a, --all     nichts ignorieren\\n  -l    langes Format verwenden\\n"))
        [('do not ignore entries', 'nichts ignorieren'), ('use a long listing format', 'langes Format verwenden')]
        >>> list(message_pairs("Copy %s to %s", "%s kopieren"))
        []
    """
    if not msgid or not msgstr or msgid == msgstr:
        return
    a, b = msgid.strip(), msgstr.strip()
    if "\n" not in a and "\n" not in b and not (a.startswith("-") and b.startswith("-")):
        candidates: Iterable[tuple[str, str]] = ((a, b),)  # fast path: one line, no option column
    else:
        items_a, items_b = _items(msgid), _items(msgstr)
        if len(items_a) != len(items_b):
            return
        candidates = _item_texts(items_a, items_b)
    for src, tgt in candidates:
        src, tgt = strip_accelerators(src).strip(), strip_accelerators(tgt).strip()
        if src and tgt and src != tgt and _same_placeholders(src, tgt):
            yield src, tgt


def locale_of(path: Path) -> str:
    """The locale a catalog belongs to, from its path.

    Example:
        >>> locale_of(Path("/usr/share/locale/pt_BR/LC_MESSAGES/apt.mo")), locale_of(Path("po/de.po"))
        ('pt_BR', 'de')
    """
    if path.parent.name == "LC_MESSAGES":
        return path.parent.parent.name
    if looks_like_lang(path.stem) and len(path.stem.split("_")[0].split("@")[0]) <= 3:
        return path.stem
    return path.parent.name


def catalog_files(directory: str | Path, langs: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """``(catalog, tag)`` for every ``.mo``/``.po`` under ``directory`` whose language passes ``langs``, sorted.

    English locales are left out unless ``langs`` asks for English.

    Example:
        >>> [t for _, t in catalog_files("/usr/share/locale", ["de"])][:1]  # doctest: +SKIP
        ['de']
    """
    root = Path(directory)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix in (".mo", ".po")
            and p.is_file()
            # other categories (coreutils installs a copy of its catalog as LC_TIME/coreutils.mo) would repeat pairs
            and not (p.parent.name.startswith("LC_") and p.parent.name != "LC_MESSAGES")
        )
    else:
        raise FileNotFoundError(f"no such catalog folder: {directory}")
    wants_english = any(lang_matches(w, "en") for w in langs or ())
    chosen = []
    for path in files:
        try:
            tag = normalize_lang(locale_of(path))
        except ValueError:
            continue
        if matches_any(tag, langs) and (wants_english or not lang_matches(tag, "en")):
            chosen.append((path, tag))
    return chosen


def catalog_messages(path: Path) -> Iterator[tuple[str, str]]:
    """``(msgid, msgstr)`` of the singular, translated, non-fuzzy, non-header entries; contexts dropped.

    Raises :class:`DataError` naming the file when it cannot be parsed.
    """
    import polib

    if path.suffix == ".mo":
        try:
            with open(path, "rb") as fh:
                catalog = stdlib_gettext.GNUTranslations(fh)._catalog
        except (UnicodeDecodeError, LookupError, IndexError, ValueError):
            catalog = None  # header the stdlib rejects (e.g. Latin-1 names): polib copes
        except (OSError, struct.error) as exc:  # struct.error: a file too short for the .mo header
            raise DataError(f"not a valid .mo catalog: {exc}", path) from None
        if catalog is not None:
            for key, value in catalog.items():
                if isinstance(key, str) and key:  # tuples are plural forms, "" the header
                    yield key.rpartition("\x04")[2], value
            return
    try:
        entries = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    except (OSError, ValueError, UnicodeDecodeError, LookupError, IndexError, struct.error) as exc:
        raise DataError(f"cannot parse catalog: {exc}", path) from None
    for entry in entries:
        if entry.msgid and not entry.msgid_plural and not entry.obsolete and "fuzzy" not in entry.flags:
            yield entry.msgid, entry.msgstr


def read_gettext(target: str, langs: Sequence[str] | None = None, on_bad_line: OnBadLine = "error") -> Iterator[Pair]:
    """Stream pairs from the catalogs under ``target`` (``system`` = ``/usr/share/locale``).

    With ``on_bad_line="skip"`` a catalog that cannot be parsed is skipped instead of raising.

    Example:
        >>> next(p for p in read_gettext("system", ["de"]) if p.src == "Write error")  # doctest: +SKIP
        Pair(src='Write error', tgt='Schreibfehler', src_lang='en', tgt_lang='de')
    """
    directory = SYSTEM_LOCALE_DIR if target == "system" else target
    for path, tag in catalog_files(directory, langs):
        try:
            for msgid, msgstr in catalog_messages(path):
                for src, tgt in message_pairs(msgid, msgstr):
                    yield Pair(src, tgt, "en", tag)
        except DataError:
            if on_bad_line != "skip":
                raise
