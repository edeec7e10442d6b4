"""Reading the fleet repo: untrusted YAML in, one validated ``DesiredState`` out."""

from controller.desired.loader import LoadResult, load_fleet

__all__ = ["LoadResult", "load_fleet"]
