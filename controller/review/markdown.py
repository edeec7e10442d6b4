"""The review as one Markdown pull-request comment that always fits.

GitHub refuses a comment longer than 65,535 characters, so the rendering is guarded: lists and
tables are shortened to at most ``n`` entries ("... and N more"), trying n = 50, 20, 8, 3, 0
until the comment fits; if even the shortest form is too long (thousands of devices), it is cut
at a line and the open ``<details>`` are closed. Headings and summary lines carry totals
computed from the full data (``sections``), so shortening never changes a number.

The comment starts with a hidden marker (``<!-- tva-review -->``) so CI can find and update
its previous comment instead of adding a new one on every push. User text (item and device
names, reasons) is escaped: it cannot close a ``<details>``, break a table, or mention people,
and goes through ``controller.display.safe`` first (controls escaped, URL credentials redacted).
"""

from __future__ import annotations

from controller.display import safe
from controller.review.model import Review
from controller.review.sections import (
    Block,
    Bullets,
    Para,
    Section,
    headline,
    sections,
    summary,
)

__all__ = ["MARKER", "MAX_COMMENT", "escape", "invalid_head_markdown", "render_markdown"]

MARKER = "<!-- tva-review -->"
MAX_COMMENT = 65_535
"""GitHub's limit for an issue or pull-request comment, in characters."""
LIMITS = (50, 20, 8, 3, 0)
_CUT_NOTE = ("*The details were cut to fit one comment. Run `tva review BASE HEAD` (or with "
             "`--json`) for the whole report.*")


def render_markdown(r: Review, names: dict[str, str] | None = None, *,
                    max_chars: int = MAX_COMMENT) -> str:
    """The comment, at most ``max_chars`` characters long."""
    text = ""
    for n in LIMITS:
        text = _render(r, names or {}, n)
        if len(text) <= max_chars:
            return text
    return _cut(text, max_chars)


def escape(text: str) -> str:
    """User text safe inside Markdown tables, lists and ``<details>``."""
    return (safe(text).replace("&", "&amp;").replace("<", "&lt;")
            .replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")
            .replace("@", "@\u200b").replace("\r", " ").replace("\n", " "))


def _render(r: Review, names: dict[str, str], n: int) -> str:
    lines = [MARKER, f"### {escape(headline(r))}", ""]
    for block in summary(r):
        lines += _block(block, n=None)
    for section in sections(r, names):
        lines += _section(section, n)
    return "\n".join(lines).rstrip("\n") + "\n"


def _section(s: Section, n: int) -> list[str]:
    out = ["<details>", f"<summary>{escape(s.title)}</summary>", ""]
    for block in s.blocks:
        out += _block(block, n)
    return [*out, "</details>", ""]


def _more(shown: int, total: int, what: str) -> str:
    return f"... and {total - shown:,} {what}"


def _block(b: Block, n: int | None) -> list[str]:
    if isinstance(b, Para):
        if not b.text:
            return []
        return [f"**{escape(b.text)}**" if b.strong else escape(b.text), ""]
    if isinstance(b, Bullets):
        # Hiding a single entry saves nothing: "... and 1 more" is as long as the entry.
        shown = b.items if n is None or len(b.items) <= n + 1 else b.items[:n]
        out = [f"- {escape(x)}" for x in shown]
        if len(shown) < len(b.items):
            out.append(f"- {_more(len(shown), len(b.items), b.what)}")
        return [*out, ""]
    rows = b.rows if n is None or len(b.rows) <= n + 1 else b.rows[: max(n, 1)]
    out = ["| " + " | ".join(escape(h) for h in b.header) + " |",
           "|" + "---|" * len(b.header)]
    out += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    if len(rows) < len(b.rows):
        out.append("| " + _more(len(rows), len(b.rows), "more rows") + " |"
                   + " |" * (len(b.header) - 1))
    if b.total is not None:
        out.append("| " + " | ".join(f"**{escape(c)}**" for c in b.total) + " |")
    return [*out, ""]


def _cut(text: str, max_chars: int) -> str:
    """Keep whole lines within ``max_chars``, close what is open, say it was cut."""
    budget = max_chars - len(_CUT_NOTE) - 64
    kept: list[str] = []
    used = 0
    depth = 0
    for line in text.splitlines():
        if used + len(line) + 1 + depth * len("</details>\n") > budget:
            break
        kept.append(line)
        used += len(line) + 1
        if line == "<details>":
            depth += 1
        elif line == "</details>":
            depth -= 1
    kept += ["", *(["</details>"] * depth), "", _CUT_NOTE]
    return "\n".join(kept) + "\n"


def invalid_head_markdown(requested: str, sha: str | None, problems: list[str], *,
                          max_chars: int = MAX_COMMENT) -> str:
    """The comment for a HEAD that does not validate: every problem, with file and line."""
    head = [MARKER, f"### tva review: {escape(requested)} ({sha[:12] if sha else '?'}) is invalid",
            "", f"**{len(problems):,} problem{'s' if len(problems) != 1 else ''}**; controllers "
            "would keep the last good revision. Fix these and push again:", ""]
    for n in (len(problems), 200, 50, 10, 0):
        body = [f"- {escape(p)}" for p in problems[:n]]
        if n < len(problems):
            body.append(f"- {_more(n, len(problems), 'more problems')} (run `tva validate`)")
        text = "\n".join([*head, *body]) + "\n"
        if len(text) <= max_chars:
            return text
    return _cut(text, max_chars)

