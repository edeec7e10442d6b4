"""The ``tva run`` daemon: triggers that say "look again", one reconcile at a time, backoff."""
