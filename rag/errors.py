"""Errors the front-ends show as one clear line (never a traceback)."""


class StudyragError(Exception):
    """Base class: the message is written for the user and says what to do."""


class ConfigError(StudyragError):
    """A setting or config file is malformed."""


class NotesError(StudyragError):
    """The notes folder is missing, empty or unreadable."""


class IndexMissingError(StudyragError):
    """No index yet, or it was built by another version: run ``study ingest``."""


class IndexUnavailableError(StudyragError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class GenerationError(StudyragError):
    """A generator backend failed or is unavailable."""


class InputError(StudyragError):
    """A question or other user input is empty or unusable."""


class ChromaAuthError(IndexUnavailableError):
    """The Chroma server (or the proxy in front of it) refused the token, or wants one."""
