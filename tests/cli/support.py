"""Run ``tva`` in-process, through its one error handler, as a user would from the shell."""

from __future__ import annotations

import pytest

from controller.cli.main import main


def tva(*args: str) -> int:
    """``tva ARGS``; returns the exit code (output goes to the captured stdout and stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    code = exited.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)
