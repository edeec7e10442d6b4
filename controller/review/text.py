"""The review for a terminal: the same sections as the PR comment, every list in full."""

from __future__ import annotations

from controller.review.model import Review
from controller.review.sections import Block, Bullets, Para, headline, sections, summary

__all__ = ["render_text"]


def render_text(r: Review, names: dict[str, str] | None = None) -> str:
    lines = [headline(r), "=" * len(headline(r)), ""]
    for block in summary(r):
        lines += _block(block)
    for section in sections(r, names or {}):
        lines += [section.title, "-" * len(section.title), ""]
        for block in section.blocks:
            lines += _block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


def _block(b: Block) -> list[str]:
    if isinstance(b, Para):
        return [b.text, ""] if b.text else []
    if isinstance(b, Bullets):
        return [*(f"  - {x}" for x in b.items), ""]
    rows = [b.header, *b.rows] + ([b.total] if b.total is not None else [])
    widths = [max(len(r[i]) for r in rows) for i in range(len(b.header))]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
           for r in rows]
    return [*out, ""]
