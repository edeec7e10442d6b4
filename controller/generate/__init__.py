"""Files generated from the models: the JSON Schema per kind and ``docs/reference.md``.

``tva schema`` writes them; ``tva schema --check`` (run by the tests) fails when they are stale.
They live here, not in ``schemas/``, so that ``schemas`` holds only the models.
"""
