"""Where shipped data lives, in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """Return the folder of shipped data (demo config, TLEs, mission databases).

    In a source checkout (editable install) this is the repository's top-level `data/`;
    an installed wheel carries the same files as `groundctl/_data`.
    """
    checkout = _PACKAGE.parent / "data"
    if (checkout / "demo").is_dir():
        return checkout
    return _PACKAGE / "_data"
