"""tva: a GitOps controller for personal media fleets."""

__all__ = ["__version__"]

__version__ = "0.1.0"
