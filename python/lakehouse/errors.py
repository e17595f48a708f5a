"""Errors of the lakehouse client, one class per error class of the server.

The server sends every error as a gRPC status whose message ends with a
line ``lakehouse-error: {"class": ..., "hint": ...}`` (see
docs/protocol.md, Errors). The client cuts that line off and raises the
class below with the message and the hint. Errors without the marker (the
server is down, a proxy answered) are classed by their gRPC status.

This module imports nothing but the standard library, so
``lakehouse.NotFoundError`` is available without pyarrow.
"""

import json
from typing import Optional

__all__ = [
    "LakehouseError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "ConflictError",
    "FailedPreconditionError",
    "PermissionDeniedError",
    "UnauthenticatedError",
    "UnavailableError",
    "DataLossError",
    "InternalError",
    "ERROR_MARKER",
]

#: Starts the last line of every error message the server sends.
ERROR_MARKER = "lakehouse-error: "


class LakehouseError(Exception):
    """The base of every error the lakehouse client raises.

    ``message`` is the server's text, ``hint`` what to do next (may be
    empty), ``class_name`` the server's error class ("not_found", ...).
    ``str(err)`` is the message, then the hint on its own line.
    """

    #: The server's name of the class; subclasses set it.
    class_name = "internal"
    #: The exit code the CLI gives this class.
    exit_code = 1

    def __init__(self, message: str, hint: str = "", class_name: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or ""
        if class_name:
            self.class_name = class_name

    def __str__(self) -> str:
        if self.hint:
            return "%s\nhint: %s" % (self.message, self.hint)
        return self.message

    def __repr__(self) -> str:
        return "%s(%r, hint=%r)" % (type(self).__name__, self.message, self.hint)


class NotFoundError(LakehouseError):
    """A branch, tag, commit, namespace, table or run does not exist."""

    class_name = "not_found"
    exit_code = 3


class AlreadyExistsError(LakehouseError):
    """A branch, tag, namespace or table of that name exists already."""

    class_name = "already_exists"
    exit_code = 4


class InvalidArgumentError(LakehouseError):
    """A bad name, ref, SQL text or argument."""

    class_name = "invalid_argument"
    exit_code = 2


class ConflictError(LakehouseError):
    """A concurrent change or a merge conflict: retry on a fresh head, or resolve."""

    class_name = "conflict"
    exit_code = 4


class FailedPreconditionError(LakehouseError):
    """The state does not allow the operation (e.g. removing a non-empty namespace)."""

    class_name = "failed_precondition"
    exit_code = 4


class PermissionDeniedError(LakehouseError):
    """The API key's role does not allow the operation."""

    class_name = "permission_denied"
    exit_code = 5


class UnauthenticatedError(LakehouseError):
    """No API key, or an unknown, revoked or expired one."""

    class_name = "unauthenticated"
    exit_code = 5


class UnavailableError(LakehouseError):
    """The server cannot be reached, or is shutting down."""

    class_name = "unavailable"
    exit_code = 6


class DataLossError(LakehouseError):
    """Stored data is damaged or missing."""

    class_name = "data_loss"
    exit_code = 1


class InternalError(LakehouseError):
    """A bug or an unexpected failure on the server."""

    class_name = "internal"
    exit_code = 1


_BY_NAME = {
    cls.class_name: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        InvalidArgumentError,
        ConflictError,
        FailedPreconditionError,
        PermissionDeniedError,
        UnauthenticatedError,
        UnavailableError,
        DataLossError,
        InternalError,
    )
}


def error_class(name: str) -> type:
    """Returns the exception class of a server error class name
    (InternalError for an unknown one)."""
    return _BY_NAME.get(name, InternalError)


def split_marker(text: str):
    """Splits a status message into (message, info dict) at the last
    ERROR_MARKER; info is None when the text has no readable marker."""
    i = text.rfind(ERROR_MARKER)
    if i < 0:
        return text, None
    try:
        info, _ = json.JSONDecoder().raw_decode(text, i + len(ERROR_MARKER))
    except ValueError:
        return text, None
    if not isinstance(info, dict):
        return text, None
    return text[:i].rstrip("\n"), info
