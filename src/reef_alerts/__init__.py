"""Alert worker for reef aquarium controllers."""

__version__ = "0.1.0"
