"""The ``medkiosk`` command: a thin composition root over each package's own entry points."""

__all__: list[str] = ["__version__"]

__version__ = "0.1.0"
