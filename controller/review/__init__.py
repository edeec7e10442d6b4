"""``tva review``: what a change to the fleet repo would do, as a pull-request comment.

``compare(base, head, statuses, now)`` is pure (it plans both revisions with the planner over
the same statuses and instant); ``inputs`` reads the revisions and statuses; ``render_markdown``
and ``render_text`` lay the result out. docs/review.md describes the output and the flags.
"""

from controller.review.compare import compare
from controller.review.markdown import MARKER, MAX_COMMENT, render_markdown
from controller.review.model import REVIEW_FORMAT, Review, Risk, RiskCode, RiskLevel
from controller.review.semantic import Change, semantic_diff
from controller.review.text import render_text

__all__ = [
    "MARKER",
    "MAX_COMMENT",
    "REVIEW_FORMAT",
    "Change",
    "Review",
    "Risk",
    "RiskCode",
    "RiskLevel",
    "compare",
    "render_markdown",
    "render_text",
    "semantic_diff",
]
