"""Alerts: raised by limit transitions and stale streams, cleared, acknowledged, shelved.

An alert is keyed by (node, parameter). It is raised when the parameter's limit state
becomes yellow or red (or its packet goes stale), escalates from yellow to red, and is
cleared when the state returns to nominal. A cleared alert stays visible until somebody
acknowledges it; an acknowledged alert that is raised again needs a new acknowledgement.
Shelving hides an alert until a time; it comes back when the shelf expires.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["yellow", "red", "stale"]
RANK = {"stale": 1, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class Alert:
    """An alert's current state. Times are Unix seconds."""

    id: int
    node: str
    parameter: str
    severity: Severity
    raised_s: float
    value: Any = None
    count: int = 1  # how many times it has been raised
    cleared_s: float | None = None
    acked_by: str | None = None
    acked_s: float | None = None
    ack_comment: str = ""
    shelved_until_s: float | None = None

    @property
    def active(self) -> bool:
        return self.cleared_s is None

    def visible(self, now_s: float) -> bool:
        """Shown to operators: active or not yet acknowledged, and not shelved."""
        if self.shelved_until_s is not None and now_s < self.shelved_until_s:
            return False
        return self.active or self.acked_s is None


@dataclass(frozen=True)
class AlertChange:
    """What happened to an alert: raised, escalated, cleared, acknowledged, shelved."""

    action: Literal["raised", "escalated", "cleared", "acknowledged", "shelved"]
    alert: Alert
    time_s: float


class AlertBook:
    """All alerts, by (node, parameter); ids increase from `first_id`."""

    def __init__(self, first_id: int = 1) -> None:
        self._next = first_id
        self._by_key: dict[tuple[str, str], Alert] = {}
        self._by_id: dict[int, tuple[str, str]] = {}

    def state_changed(
        self, node: str, parameter: str, state: str, value: Any, time_s: float
    ) -> AlertChange | None:
        """Feed a limit (or staleness) state change; return the alert change it makes."""
        key = (node, parameter)
        alert = self._by_key.get(key)
        if state in ("nominal", "disabled", "fresh"):
            if alert is None or not alert.active:
                return None
            return self._store(AlertChange("cleared", replace(alert, cleared_s=time_s), time_s))
        severity: Severity = "red" if state == "red" else "stale" if state == "stale" else "yellow"
        if alert is None or not alert.active:
            count = alert.count + 1 if alert is not None else 1
            alert_id = alert.id if alert is not None else self._new_id()
            fresh = Alert(alert_id, node, parameter, severity, time_s, value, count)
            return self._store(AlertChange("raised", fresh, time_s))
        if RANK[severity] > RANK[alert.severity]:
            up = replace(alert, severity=severity, value=value, acked_by=None, acked_s=None)
            return self._store(AlertChange("escalated", up, time_s))
        return None

    def restore(self, alerts: list[Alert]) -> None:
        """Take back alerts from an earlier run (active or unacknowledged ones)."""
        for alert in alerts:
            self._store(AlertChange("raised", alert, alert.raised_s))
            self._next = max(self._next, alert.id + 1)

    def acknowledge(self, alert_id: int, who: str, time_s: float, comment: str = "") -> AlertChange:
        """Acknowledge an alert; KeyError if there is no such alert."""
        alert = self._by_key[self._by_id[alert_id]]
        done = replace(alert, acked_by=who, acked_s=time_s, ack_comment=comment)
        return self._store(AlertChange("acknowledged", done, time_s))

    def shelve(self, alert_id: int, until_s: float, time_s: float) -> AlertChange:
        """Hide an alert until `until_s`; KeyError if there is no such alert."""
        alert = self._by_key[self._by_id[alert_id]]
        return self._store(AlertChange("shelved", replace(alert, shelved_until_s=until_s), time_s))

    def visible(self, now_s: float) -> list[Alert]:
        """Alerts operators should see now: red first, then newest first."""
        shown = [a for a in self._by_key.values() if a.visible(now_s)]
        return sorted(shown, key=lambda a: (-RANK[a.severity], -a.raised_s))

    def find(self, node: str, parameter: str) -> Alert | None:
        """The alert of (node, parameter), if there has been one."""
        return self._by_key.get((node, parameter))

    def get(self, alert_id: int) -> Alert:
        return self._by_key[self._by_id[alert_id]]

    def _new_id(self) -> int:
        self._next += 1
        return self._next - 1

    def _store(self, change: AlertChange) -> AlertChange:
        alert = change.alert
        self._by_key[(alert.node, alert.parameter)] = alert
        self._by_id[alert.id] = (alert.node, alert.parameter)
        return change
