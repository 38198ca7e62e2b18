"""vpi: few-shot semantic segmentation with Variational Prototype Inference."""

__version__ = "0.1.0"

from vpi.errors import BackendError, CheckpointError, ConfigError, DataError, VpiError

__all__ = [
    "__version__",
    "BackendError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "VpiError",
]
