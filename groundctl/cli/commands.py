"""Import every command module so that each registers itself on the `cli` group."""

from groundctl.cli import (  # noqa: F401
    commanding,
    console,
    db,
    links,
    passes,
    plan,
    replay,
    sim,
    tle,
)
