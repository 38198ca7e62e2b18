from runtime.helpers import reading_export  # noqa: F401  (the session's support-reading export)
