"""The ``tva`` command line: one module per command, each returning an exit code."""
