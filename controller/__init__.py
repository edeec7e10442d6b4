"""tva: a GitOps controller for personal media fleets."""

__version__ = "0.1.0"
