"""The ordinary English sentences packaged with mlembed (5,000 from Tatoeba, CC BY 2.0 FR; see
``mlembed/data/english_sentences.md``): distillation fits a pretrained student's start on the first 4,500
and measures English fidelity (dev ``english_cosine``) on the last 500; tests use them as ordinary text.
"""

from __future__ import annotations

from pathlib import Path

#: the last of the packaged English sentences: never fitted on, they measure English fidelity (dev english_cosine)
HELDOUT_ENGLISH = 500


def english_sentences(part: str = "fit") -> list[str]:
    """The first 4,500 packaged sentences (``fit``) or the last 500 (``heldout``).

    Example:
        >>> len(english_sentences()), len(english_sentences("heldout")), english_sentences()[0]
        (4500, 500, 'The committee was summoned at once.')
    """
    if part not in ("fit", "heldout"):
        raise ValueError(f"part {part!r}: expected fit or heldout")
    lines = (Path(__file__).parent / "english_sentences.txt").read_text(encoding="utf-8").splitlines()
    return lines[-HELDOUT_ENGLISH:] if part == "heldout" else lines[:-HELDOUT_ENGLISH]
