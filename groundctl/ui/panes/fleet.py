"""The Fleet pane: the fleet plan for the next 24 h (groundctl.planning), node by node.

For each node: its state of charge and storage now (latest telemetry), the plan's
forecast minimum state of charge and maximum storage over the window, its next planned
pass (station, countdown, bytes to downlink), what the window delivers and the backlog
it leaves; a node whose forecast breaks a limit is marked. The plan is made in a worker
(the prediction and the forecast take a fraction of a second for a small fleet, a second
for a hundred nodes), again every 10 minutes of the engine's clock and on `r`, with the
jobs queued on the ground in the config's `[planning] jobs` file (read again each time;
none without one).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.filesize import decimal
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from groundctl.ui.panes.base import Pane

if TYPE_CHECKING:
    from groundctl.planning.plan import NodePlan, PassPlan, Plan
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot

REPLAN_EVERY_S = 600.0  # of the engine clock
COLUMNS = (  # key, label, width
    ("node", "node", 8),
    ("soc", "SoC", 4),
    ("min_soc", "min 24h", 7),
    ("storage", "storage", 8),
    ("max_storage", "max 24h", 7),
    ("next", "next pass", 18),
    ("downlink", "downlink", 9),
    ("delivered", "24h delivers", 12),
    ("backlog", "backlog", 9),
    ("limits", "limits", 15),
)


def _countdown(seconds: float) -> str:
    if seconds <= 0:
        return "now"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"{minutes}m"


def next_pass(node: NodePlan, clock_s: float) -> PassPlan | None:
    """The node's first granted pass not over yet."""
    return next(
        (pp for pp in node.passes if pp.granted and pp.contact.los_s > clock_s), None
    )  # fmt: skip


def row(node: NodePlan, plan: Plan, values: dict[str, object], clock_s: float) -> list[Text]:
    """The cells of one node's row."""
    soc = values.get("POWER_HK.BATT_SOC")
    used = values.get("COMPUTE_HK.STORAGE_USED")
    upcoming = next_pass(node, clock_s)
    limits = plan.limits
    low = node.min_soc < limits.min_soc
    full = node.max_storage > limits.storage_high_water
    broken = ", ".join(w for w, bad in (("battery", low), ("storage", full)) if bad)
    if upcoming is not None:
        where = f"{upcoming.contact.station} {_countdown(upcoming.contact.aos_s - clock_s)}"
        down = decimal(int(upcoming.downlink_b)) if upcoming.downlink_b >= 1 else "-"
    else:
        where, down = "none in 24h", "-"
    return [
        Text(node.node),
        Text(f"{soc:.0f}%" if isinstance(soc, int | float) else "-", justify="right"),
        Text(f"{node.min_soc:.0%}", "red" if low else "", justify="right"),
        Text(f"{used:.0f} GB" if isinstance(used, int | float) else "-", justify="right"),
        Text(f"{node.max_storage:.0%}", "red" if full else "", justify="right"),
        Text(where),
        Text(down, justify="right"),
        Text(decimal(int(node.delivered_b)), justify="right"),
        Text(decimal(int(node.backlog_b)), justify="right"),
        Text(broken or "ok", "bold red" if broken else "green"),
    ]


class FleetPane(Pane):
    """The fleet plan, a row per node."""

    TITLE = "Fleet"
    KEY = "f"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "replan", "Re-plan")]

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self.plan: Plan | None = None
        self.plan_clock = -math.inf
        self.plan_error = ""
        self.clock_s = 0.0
        self.values: dict[str, dict[str, object]] = {}  # node -> parameter -> latest value
        self._planning = False

    def compose(self) -> ComposeResult:
        yield Static("planning...", id="fleet-summary")
        table: DataTable[Text] = DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#fleet-table", DataTable)

    def update_from(self, snapshot: Snapshot) -> None:
        self.clock_s = snapshot.clock_s
        for (node, parameter), value in snapshot.values.items():
            self.values.setdefault(node, {})[parameter] = value.value
        if self.backend.replaying:
            if self.plan_error == "":
                self.plan_error = "no plan in a replay"
                self.query_one("#fleet-summary", Static).update(Text(self.plan_error, "dim"))
            return
        if not self._planning and abs(self.clock_s - self.plan_clock) >= REPLAN_EVERY_S:
            self.action_replan()
        elif snapshot.values and self.plan is not None:
            self.show()  # the latest values, the countdowns

    def action_replan(self) -> None:
        """Plan again now (in a worker)."""
        if self.backend.replaying:
            return
        self._planning = True
        self.plan_clock = self.clock_s
        self.make_plan()

    @work(exclusive=True, group="fleet-plan", exit_on_error=False)
    async def make_plan(self) -> None:
        try:
            plan = await self.backend.fleet_plan()
        except Exception as error:
            self.plan_error = f"no plan: {getattr(error, 'message', error)}"
            self.query_one("#fleet-summary", Static).update(Text(self.plan_error, "red"))
            return
        finally:
            self._planning = False
        self.plan_error = ""
        self.plan = plan
        self.show()

    def show(self) -> None:
        plan = self.plan
        if plan is None or not self.is_attached:
            return
        table = self.table
        for name, node in plan.nodes.items():
            cells = row(node, plan, self.values.get(name, {}), self.clock_s)
            if name in table.rows:
                for (key, _, _), cell in zip(COLUMNS, cells, strict=True):
                    table.update_cell(name, key, cell)
            else:
                table.add_row(*cells, key=name)
        broken = plan.violations()
        made = datetime.fromtimestamp(plan.start_s, UTC)
        summary = Text()
        summary.append(f"plan of {made:%H:%M}Z, 24 h: ")
        summary.append(f"{decimal(int(plan.delivered_b))} to deliver; ")
        if broken:
            summary.append(f"{len(broken)} limits broken", "bold red")
        else:
            summary.append("every node within its limits", "green")
        jobs = sum(len(j) for j in plan.jobs.values())
        source = self.backend.config.planning.jobs_file
        queued = f"{jobs} job{'s' * (jobs != 1)}"
        where = f"{queued} from {source.name}" if source else "no jobs ([planning] jobs)"
        summary.append(f"  {where}; r: re-plan", "dim")
        self.query_one("#fleet-summary", Static).update(summary)
