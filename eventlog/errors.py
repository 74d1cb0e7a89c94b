"""Every exception the eventlog package raises.

Each class maps to one exit code of the command line (see ``exit_code_for``):
integrity problems 1, bad input 2, concurrency conflicts 3, business rules 4,
storage refused (disk full, read-only filesystem, permission) 5.
"""

from __future__ import annotations


class LedgerLakeError(Exception):
    """Base class of every error raised on purpose by LedgerLake."""

    exit_code = 1


class InvalidInputError(LedgerLakeError, ValueError):
    """Input that does not fit what was expected; nothing was written."""

    exit_code = 2


class InvalidStreamIdError(InvalidInputError):
    """A stream id that is empty, too long, or contains '/', '\\\\' or control characters."""


class UnknownEventTypeError(InvalidInputError):
    """An event type that no registry entry describes."""


class PayloadSchemaError(InvalidInputError):
    """A payload whose fields or types do not fit its event type's schema."""


class DuplicateEventError(InvalidInputError):
    """An event id that is already in the log with different contents."""


class ConcurrencyError(LedgerLakeError):
    """The stream's version was not the one the writer expected."""

    exit_code = 3

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but version {expected} was expected"
        )


class RuleError(LedgerLakeError):
    """A business rule said no to a command."""

    exit_code = 4


class IntegrityError(LedgerLakeError):
    """The log on disk breaks one of its invariants (gap, overlap, unreadable part...)."""

    exit_code = 1


class StorageError(LedgerLakeError):
    """The machine refused a read or write (disk full, read-only filesystem, no permission).

    Nothing was acknowledged; what was acknowledged before is safe. Fix the storage and
    run the command again.
    """

    exit_code = 5


class LakeNotFoundError(InvalidInputError):
    """The lake directory does not exist or holds no log."""


def exit_code_for(error: BaseException) -> int:
    """The command-line exit code for an exception (2 for anything that is not ours)."""
    if isinstance(error, LedgerLakeError):
        return error.exit_code
    return 2
