"""Import every command module so that each registers itself on the `cli` group."""

from groundctl.cli import db, passes, tle  # noqa: F401
