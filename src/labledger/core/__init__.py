"""The domain of labledger: models, lifecycle and use cases. Pure: imports no I/O library."""
