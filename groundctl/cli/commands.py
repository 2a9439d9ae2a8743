"""Import every command module so that each registers itself on the `cli` group."""

from groundctl.cli import commanding, console, db, links, passes, replay, sim, tle  # noqa: F401
