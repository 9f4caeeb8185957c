"""Errors that the command line turns into a one-line message instead of a traceback."""


class RamError(Exception):
    """Bad input from the user: the message says what to fix."""


class ConfigError(RamError):
    """An unknown preset or field, or a value the model cannot run with."""


class DataError(RamError):
    """MNIST files missing, corrupt or unreadable."""
