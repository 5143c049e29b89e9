"""Errors that tell the user what is wrong, where, and how to fix it.

Every mistake a user can make (a bad file, a wrong plan key, a missing column) raises a subclass
of :class:`RceError`. The CLI prints it as two lines on stderr and exits with
:data:`ExitCode.INPUT_ERROR`; library users catch ``RceError``. Messages never contain a student
identifier or name: locations are given as file, spreadsheet row and column.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, the same convention as grep, diff and ruff."""

    OK = 0
    #: The command ran and found problems (validate errors, a gate such as --min-match-rate).
    FINDINGS = 1
    #: The command could not run: usage error, unreadable or malformed input.
    INPUT_ERROR = 2
    #: Interrupted by the user (Ctrl-C).
    INTERRUPTED = 130


class RceError(Exception):
    """A problem the user can fix.

    Parameters
    ----------
    message
        What is wrong, in one sentence.
    where
        Where it is: file, spreadsheet row (header = row 1), column, or plan key.
    hint
        How to fix it.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str | None]:
        """JSON-safe form, for ``--format json`` error output."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
        }


class PlanError(RceError):
    """The study plan (rce.toml) is missing, malformed, or has an unknown key or wrong type."""


class InputFileError(RceError):
    """An input file cannot be read at all (missing, a directory, binary, empty, bad encoding)."""


class LayoutError(RceError):
    """An input file was read but its layout was not recognised or a required column is missing."""


class DataError(RceError):
    """The data were read but cannot support the requested analysis (too few students, ...)."""


class NotAvailableError(RceError):
    """The requested command or option is not available in this version."""
