"""studyrag: a cited, offline study partner over your own notes."""

__version__ = "0.1.0"
