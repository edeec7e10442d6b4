"""Tests of the observers, against the real systems."""
