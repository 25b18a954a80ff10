"""The observer's verification engine (see :mod:`protocol.verify`)."""
