from runtime.helpers import exported  # noqa: F401  (the session's shared tiny export)
