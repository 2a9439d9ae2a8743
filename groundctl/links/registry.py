"""Finding link adapters: the `groundctl.links` entry-point group.

Built-in adapters are registered in groundctl's own pyproject.toml exactly as a plugin
package registers its own, so a third-party adapter is a first-class citizen. An adapter
that fails to load is reported with its name and error; the others still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from groundctl.links.base import Link, LinkContext, LinkError

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


def build(
    config: Any,
    link: Any,
    adapters: dict[str, type[Link]] | None = None,
) -> Link:
    """The Link a config's `[links.NAME]` entry describes, bound to the config.

    Raises LinkError naming the config file, line, link and what is wrong (an unknown
    adapter lists the installed ones).
    """
    if adapters is None:
        adapters, _ = discover()
    where = f"{config.path}:{link.line}: links.{link.name}" if link.line else f"links.{link.name}"
    adapter = adapters.get(link.adapter)
    if adapter is None:
        raise LinkError(
            f"{where}.adapter: no link adapter {link.adapter!r} is installed",
            hint="installed: " + ", ".join(sorted(adapters)) + " (groundctl links lists them)",
        )
    try:
        built = adapter(link.name, link.node, dict(link.options))
    except LinkError as error:
        raise LinkError(f"{where}: {error}", hint=error.hint) from None
    built.bind(LinkContext(config=config))
    return built
