"""The review for a terminal: the same sections as the PR comment, every list in full.

Every piece of user text goes through ``controller.display.safe`` (one line each: controls
escaped, URL credentials redacted), so the report is safe in a file or a CI log too.
"""

from __future__ import annotations

from controller.display import safe
from controller.review.model import Review
from controller.review.sections import Block, Bullets, Para, headline, sections, summary

__all__ = ["render_text"]


def render_text(r: Review, names: dict[str, str] | None = None) -> str:
    title = safe(headline(r))
    lines = [title, "=" * len(title), ""]
    for block in summary(r):
        lines += _block(block)
    for section in sections(r, names or {}):
        title = safe(section.title)
        lines += [title, "-" * len(title), ""]
        for block in section.blocks:
            lines += _block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


def _block(b: Block) -> list[str]:
    if isinstance(b, Para):
        return [safe(b.text), ""] if b.text else []
    if isinstance(b, Bullets):
        return [*(f"  - {safe(x)}" for x in b.items), ""]
    rows = [[safe(c) for c in r] for r in [b.header, *b.rows] + ([b.total] if b.total is not None else [])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(b.header))]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
           for r in rows]
    return [*out, ""]
