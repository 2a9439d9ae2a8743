"""Finding link adapters: the `groundctl.links` entry-point group.

Built-in adapters are registered in groundctl's own pyproject.toml exactly as a plugin
package registers its own, so a third-party adapter is a first-class citizen. An adapter
that fails to load is reported with its name and error; the others still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from groundctl.links.base import Link

GROUP = "groundctl.links"


@dataclass(frozen=True)
class BrokenAdapter:
    name: str
    target: str  # module:attribute as registered
    error: str


def discover() -> tuple[dict[str, type[Link]], list[BrokenAdapter]]:
    """Every installed adapter by name, and the ones that could not be loaded."""
    adapters: dict[str, type[Link]] = {}
    broken: list[BrokenAdapter] = []
    for point in entry_points(group=GROUP):
        try:
            adapter = point.load()
        except Exception as error:  # a plugin's import can fail in any way
            broken.append(
                BrokenAdapter(point.name, point.value, f"{type(error).__name__}: {error}")
            )
            continue
        if not (isinstance(adapter, type) and issubclass(adapter, Link)):
            broken.append(
                BrokenAdapter(point.name, point.value, "not a subclass of groundctl.links.Link")
            )
            continue
        adapters[point.name] = adapter
    return adapters, broken
