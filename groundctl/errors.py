"""One error hierarchy for everything a user can get wrong.

Every error a user can cause (a bad config key, a bad TLE line, an unreachable server)
is a `GroundctlError` with a short `title`, a precise `message` and a `hint` that says
what to do instead. The CLI and the console print these without a traceback; any other
exception is a bug.
"""

from __future__ import annotations


class GroundctlError(Exception):
    """Base class of user-facing errors.

    `title` names the kind of problem, `message` says exactly what is wrong (file, line,
    key, value) and `hint` says what to do about it.
    """

    title = "groundctl error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(GroundctlError):
    title = "configuration error"


class TLEError(GroundctlError):
    title = "TLE error"


class FetchError(GroundctlError):
    title = "TLE fetch failed"


class ArchiveError(GroundctlError):
    title = "archive error"


class UsageError(GroundctlError):
    title = "usage error"


class MDBError(GroundctlError):
    title = "mission database error"


class CommandError(GroundctlError):
    """A command that cannot be sent as given: syntax, validation, role, confirmation."""

    title = "command refused"


class ProcedureError(GroundctlError):
    title = "procedure error"
