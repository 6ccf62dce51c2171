"""The patchers' one error type, in a module of its own so that every patch module can
raise it without importing another (core and docio used to import each other for it)."""


class PatchError(Exception):
    """Input we cannot patch safely; the message names the resource and container."""
