"""The base of every desired-state model, on its own so that a kind in its own module
(``schemas.fabric``) shares it without importing ``schemas.desired``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Model"]


class Model(BaseModel):
    """Base of every desired-state model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
