"""The base of every desired-state model, and the secret reference they share.

Kept apart from ``schemas/desired.py`` so that models in their own modules (``schemas/notify.py``,
``schemas/fabric.py``) can use them and still be part of the fleet's desired state.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["Model", "SecretRef"]


class Model(BaseModel):
    """Base of every desired-state model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SecretRef(Model):
    """A credential given by reference only; the value never appears in the fleet repo.

    Exactly one of ``env`` (an environment variable of the controller), ``file`` (a path on
    the node, e.g. ``/etc/tva/rpc-password``) or ``keyring`` (``service/username`` in the
    OS keyring).
    """

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = Field(
        default=None, description="Name of an environment variable of the controller; a node "
        "resolves only names with its prefix (TVA_ unless its node.toml says otherwise)."
    )
    file: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None,
        description="Path of a file on the node that holds the value (a trailing newline is "
        "ignored); it must lie in the node's secrets directories (/etc/tva unless its node.toml "
        "says otherwise).",
    )
    keyring: Annotated[str, StringConstraints(pattern=r"^[^/\s]+/[^/\s]+$")] | None = Field(
        default=None, description="service/username of an entry in the OS keyring."
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise ValueError(
                "inline secrets are refused; give a reference: {env: VAR}, {file: /path} "
                "or {keyring: service/user}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("env", "file", "keyring") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret reference needs exactly one of env, file or keyring")
        return self
