"""The command palette's finds: nodes and parameters (panes and themes are system
commands of the app). Choosing a node shows it in the Telemetry pane; choosing a
parameter shows its node there and plots it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from groundctl.ui.app import ConsoleApp

MAX_HITS = 40


class NodesAndParameters(Provider):
    """Nodes the console knows, and every parameter of each node's mission database."""

    def _targets(self) -> list[tuple[str, str, Callable[[], None]]]:
        app = cast("ConsoleApp", self.app)
        backend = app.backend
        targets: list[tuple[str, str, Callable[[], None]]] = []
        for node in backend.nodes():
            targets.append((f"node {node}", "show its telemetry", partial(app.show_node, node)))
            mission = backend.mission_of(node)
            if mission is None:
                continue
            names = [f"{p.name}.{f.name}" for p in mission.packets.values() for f in p.fields]
            names += [d.name for d in mission.derived]
            for name in names:
                targets.append(
                    (f"{node} {name}", "plot it", partial(app.plot_parameter, node, name))
                )
        return targets

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        hits = 0
        for text, help_text, action in self._targets():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), action, help=help_text)
                hits += 1
                if hits >= MAX_HITS:
                    return

    async def discover(self) -> Hits:
        app = cast("ConsoleApp", self.app)
        for node in app.backend.nodes()[:MAX_HITS]:
            yield DiscoveryHit(
                f"node {node}", partial(app.show_node, node), help="show its telemetry"
            )
