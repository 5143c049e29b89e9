"""rce: rapid-cycle evaluation of K-12 education technology.

The library never imports Typer or Rich; ``rce.cli`` is the only module that does.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
