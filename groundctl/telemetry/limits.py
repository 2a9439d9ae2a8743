"""Limit checking: engineering values -> limit states, with persistence and conditions.

A parameter's state is `nominal`, `yellow` or `red` (or `disabled` while its enabling
condition is false). A new state takes effect only after `persistence` consecutive
samples in it, so a single noisy sample does not raise an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from groundctl.mdb.expr import Expression, compile_expression
from groundctl.mdb.model import Limits

State = Literal["nominal", "yellow", "red", "disabled"]


def classify(limits: Limits, value: Any) -> State:
    """The raw (not yet persistent) state of `value` under `limits`."""
    if isinstance(value, str):
        if value in limits.red_states:
            return "red"
        if value in limits.yellow_states:
            return "yellow"
        return "nominal"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "nominal"
    if (limits.red_low is not None and value < limits.red_low) or (
        limits.red_high is not None and value > limits.red_high
    ):
        return "red"
    if (limits.yellow_low is not None and value < limits.yellow_low) or (
        limits.yellow_high is not None and value > limits.yellow_high
    ):
        return "yellow"
    return "nominal"


@dataclass(frozen=True)
class Transition:
    """A parameter's limit state changed (after persistence)."""

    node: str
    parameter: str
    old: State
    new: State
    value: Any
    time_s: float


class _Tracker:
    __slots__ = ("candidate", "count", "state")

    def __init__(self) -> None:
        self.state: State = "nominal"
        self.candidate: State = "nominal"
        self.count = 0


class LimitChecker:
    """Per (node, parameter) limit state with persistence.

    `check` returns the effective state of a sample and, when the effective state
    changes, the Transition to publish.
    """

    def __init__(self, limits: Mapping[str, Limits]) -> None:
        self.limits = dict(limits)
        self._conditions: dict[str, Expression] = {
            name: compile_expression(lim.when) for name, lim in self.limits.items() if lim.when
        }
        self._trackers: dict[tuple[str, str], _Tracker] = {}

    def assume(self, node: str, parameter: str, state: State) -> None:
        """Start a parameter in `state` (an alert restored from an earlier run)."""
        tracker = self._trackers.setdefault((node, parameter), _Tracker())
        tracker.state = tracker.candidate = state
        tracker.count = 0

    def check(
        self,
        node: str,
        parameter: str,
        value: Any,
        time_s: float,
        env: Mapping[str, Any] | None = None,
    ) -> tuple[State, Transition | None]:
        limits = self.limits.get(parameter)
        if limits is None:
            return "nominal", None
        key = (node, parameter)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = _Tracker()
        condition = self._conditions.get(parameter)
        if condition is not None:
            try:
                enabled = bool(condition.evaluate(env or {}))
            except (KeyError, ArithmeticError, TypeError, ValueError):
                # The condition's inputs are not known yet: limits stay as they were.
                enabled = tracker.state != "disabled"
            if not enabled:
                return self._settle(tracker, node, parameter, "disabled", value, time_s, 1)
        raw = classify(limits, value)
        return self._settle(tracker, node, parameter, raw, value, time_s, limits.persistence)

    def _settle(
        self,
        tracker: _Tracker,
        node: str,
        parameter: str,
        raw: State,
        value: Any,
        time_s: float,
        persistence: int,
    ) -> tuple[State, Transition | None]:
        if raw == tracker.state:
            tracker.candidate, tracker.count = raw, 0
            return raw, None
        if raw == tracker.candidate:
            tracker.count += 1
        else:
            tracker.candidate, tracker.count = raw, 1
        if tracker.count >= persistence:
            old = tracker.state
            tracker.state, tracker.count = raw, 0
            return raw, Transition(node, parameter, old, raw, value, time_s)
        return tracker.state, None
