"""The exceptions vpi raises for bad input: the CLI prints them as one line and exits 2."""


class VpiError(Exception):
    """Base of every error that is the user's to fix (bad path, bad value, bad file)."""


class ConfigError(VpiError, ValueError):
    """An unknown preset, backbone or option, or a value out of range."""


class CheckpointError(VpiError):
    """A file that is not a vpi checkpoint, or one from an incompatible version."""


class DataError(VpiError):
    """A missing, unreadable or inconsistent image, mask or dataset layout."""


class BackendError(VpiError):
    """A runtime backend that is missing, or an engine built for another version or GPU."""


class AccuracyError(VpiError):
    """A reduced precision that loses more task accuracy than an export allows."""
