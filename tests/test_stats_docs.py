"""docs/stats.md names every figure and condition that stats.figures defines."""

from pathlib import Path

from webapp.stats import figures as F

DOC = Path(__file__).resolve().parent.parent / "docs" / "stats.md"


def test_the_document_lists_every_figure():
    text = DOC.read_text(encoding="utf-8")
    for f in F.FIGURES:
        assert f"| `{f.key}` | {f.name} |" in text, f.key
    for c in F.CONDITIONS:
        assert f"| `{c.key}` | {c.name} |" in text, c.key
