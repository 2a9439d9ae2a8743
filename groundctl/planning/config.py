"""The config's [planning] table: the planner's window and limits, and the link budgets.

```toml
[planning]
window_h = 24               # default planning window
step_s = 60                 # planner time step
min_soc = 0.3               # never below this state of charge (0..1)
storage_high_water = 0.9    # never above this fraction of storage
[planning.budget]           # default link budget (all stations and nodes)
overhead = 0.1
rates = [[5, 2.0e6], [20, 10.0e6], [45, 18.75e6]]     # [min elevation deg, bytes/s]
[planning.budget."GS-1"]          # one station's budget
model = "fspl"
frequency_hz = 8.2e9
...
[planning.budget."GS-1/ODC-07"]   # one station and node
```

A budget table is either a rate table (``model = "table"``, the default: ``rates``,
``overhead``) or a free-space link budget (``model = "fspl"``: ``frequency_hz``,
``eirp_dbw``, ``gt_dbk``, ``losses_db``, ``required_ebn0_db``, ``margin_db``,
``rate_steps_bps``, optional ``min_elevation_deg`` and ``step_min_elevation_deg``, one per
rate step, and ``overhead``). Each budget table is complete on its own: a station's does
not inherit the default's keys. Without a default budget the simulator's own
(`SIMULATOR_BUDGET`) applies.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundctl.planning.budget import SIMULATOR_BUDGET, LinkBudget
from groundctl.tomlreader import Keys, TomlReader, kind_of

_PLANNING_KEYS = {"window_h", "step_s", "min_soc", "storage_high_water", "budget", "jobs"}
_TABLE_KEYS = {"model", "overhead", "rates"}
_FSPL_KEYS = {
    "model",
    "overhead",
    "frequency_hz",
    "eirp_dbw",
    "gt_dbk",
    "losses_db",
    "required_ebn0_db",
    "margin_db",
    "rate_steps_bps",
    "min_elevation_deg",
    "step_min_elevation_deg",
}
_MODELS = ("table", "fspl")


@dataclass(frozen=True)
class PlanningConfig:
    """The [planning] table. `budgets` maps "STATION" or "STATION/NODE" to a budget."""

    window_h: float = 24.0
    step_s: float = 60.0
    min_soc: float = 0.3
    storage_high_water: float = 0.9
    default_budget: LinkBudget = SIMULATOR_BUDGET
    budgets: Mapping[str, LinkBudget] = field(default_factory=dict)
    jobs_file: Path | None = None  # the jobs queued on the ground (groundctl plan, Fleet pane)

    def budget_for(self, station: str, node: str) -> LinkBudget:
        """The budget of a station and node: the pair's, else the station's, else the
        default."""
        pair = self.budgets.get(f"{station}/{node}")
        if pair is not None:
            return pair
        return self.budgets.get(station, self.default_budget)


def read_planning(
    reader: TomlReader, raw: Any, *, stations: Collection[str] | None = None
) -> PlanningConfig:
    """Validate the value of the config's `planning` key (None or absent: all defaults).

    With `stations` (the configured station names), a budget for another station is an
    error. Every problem raises `reader.error_class` naming the key, what was expected
    and what was found.
    """
    if raw is None:
        return PlanningConfig()
    keys: Keys = ("planning",)
    table = reader.table(raw, keys)
    reader.check_keys(table, _PLANNING_KEYS, keys)
    window_h = reader.number(table, "window_h", keys, default=24.0, low=0.1, high=720, unit=" h")
    step_s = reader.number(table, "step_s", keys, default=60.0, low=1, high=3600, unit=" s")
    min_soc = reader.number(table, "min_soc", keys, default=0.3, low=0, high=1)
    high_water = reader.number(table, "storage_high_water", keys, default=0.9, low=0, high=1)
    if high_water == 0:
        raise reader.error(
            (*keys, "storage_high_water"),
            "0 leaves no storage to fill: expected more than 0, up to 1",
        )
    jobs_file = reader.file(table, "jobs", keys) if "jobs" in table else None
    default_budget = SIMULATOR_BUDGET
    budgets: dict[str, LinkBudget] = {}
    if "budget" in table:
        budget_keys: Keys = (*keys, "budget")
        budget_table = reader.table(table["budget"], budget_keys)
        own = {k: v for k, v in budget_table.items() if not isinstance(v, dict)}
        if own:
            default_budget = _budget(reader, own, budget_keys)
        for name, value in budget_table.items():
            if not isinstance(value, dict):
                continue
            where: Keys = (*budget_keys, name)
            station, _, node = name.partition("/")
            if not station.strip() or (name.count("/") and not node.strip()) or "/" in node:
                raise reader.error(
                    where,
                    f'expected a station name or "STATION/NODE", found {name!r}',
                    hint='e.g. [planning.budget."GS-1"] or [planning.budget."GS-1/ODC-07"]',
                )
            if stations is not None and station not in stations:
                raise reader.error(
                    where,
                    f"no station {station!r} in [[stations]]",
                    hint="configured stations: " + (", ".join(stations) or "none"),
                )
            budgets[name] = _budget(reader, value, where)
    return PlanningConfig(
        window_h=window_h,
        step_s=step_s,
        min_soc=min_soc,
        storage_high_water=high_water,
        default_budget=default_budget,
        budgets=budgets,
        jobs_file=jobs_file,
    )


def _budget(reader: TomlReader, table: Mapping[str, Any], keys: Keys) -> LinkBudget:
    model = reader.string(table, "model", keys, default="table")
    if model not in _MODELS:
        raise reader.error(
            (*keys, "model"),
            f"expected one of {', '.join(map(repr, _MODELS))}, found {model!r}",
            hint='"table": rates by elevation; "fspl": a free-space link budget',
        )
    allowed = _TABLE_KEYS if model == "table" else _FSPL_KEYS
    for key in table:
        if key not in allowed and key in _TABLE_KEYS | _FSPL_KEYS:
            other = "fspl" if model == "table" else "table"
            raise reader.error(
                (*keys, key),
                f"{key!r} belongs to a model = {other!r} budget, this one is {model!r}",
                hint=f'set model = "{other}", or remove {key}',
            )
    reader.check_keys(table, allowed, keys)
    overhead = reader.number(table, "overhead", keys, default=0.0, low=0, high=1)
    if overhead == 1:
        raise reader.error(
            (*keys, "overhead"), "1 leaves no useful rate: expected 0 to less than 1"
        )
    if model == "table":
        if "rates" not in table:
            raise reader.error(
                (*keys, "rates"),
                "missing",
                hint="add rates = [[min_elevation_deg, bytes_per_s], ...]",
            )
        rates = _rates(reader, table["rates"], (*keys, "rates"))
        return LinkBudget.table(rates, overhead=overhead)

    def number(
        key: str, low: float | None = None, high: float | None = None, unit: str = ""
    ) -> float:
        return reader.number(table, key, keys, low=low, high=high, unit=unit)

    frequency = number("frequency_hz", 1e6, 1e12, " Hz")
    eirp = number("eirp_dbw", -50, 100, " dBW")
    gt = number("gt_dbk", -50, 80, " dB/K")
    losses = number("losses_db", 0, 100, " dB")
    required = number("required_ebn0_db", -10, 30, " dB")
    margin = number("margin_db", 0, 50, " dB")
    min_el = reader.number(
        table, "min_elevation_deg", keys, default=-90.0, low=-90, high=90, unit=" deg"
    )
    steps = _numbers(reader, table, "rate_steps_bps", keys, low=1.0, what="bit rate")
    step_keys: Keys = (*keys, "rate_steps_bps")
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise reader.error(
                (*step_keys, i),
                f"expected bit rates in increasing order, found {steps[i]:g} after "
                f"{steps[i - 1]:g}",
            )
    step_min: list[float] = []
    if "step_min_elevation_deg" in table:
        step_min = _numbers(
            reader, table, "step_min_elevation_deg", keys, low=-90, high=90, what="elevation"
        )
        if len(step_min) != len(steps):
            raise reader.error(
                (*keys, "step_min_elevation_deg"),
                f"expected one elevation per rate step ({len(steps)}), found {len(step_min)}",
            )
    return LinkBudget.fspl(
        frequency_hz=frequency,
        eirp_dbw=eirp,
        gt_dbk=gt,
        losses_db=losses,
        required_ebn0_db=required,
        margin_db=margin,
        rate_steps_bps=steps,
        min_elevation_deg=min_el,
        step_min_elevation_deg=step_min,
        overhead=overhead,
    )


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _numbers(
    reader: TomlReader,
    table: Mapping[str, Any],
    key: str,
    keys: Keys,
    *,
    low: float | None = None,
    high: float | None = None,
    what: str,
) -> list[float]:
    """A non-empty list of numbers within [low, high]."""
    where: Keys = (*keys, key)
    if key not in table:
        raise reader.error(where, "missing", hint=f"add {key} = [<{what}>, ...]")
    value = table[key]
    if not isinstance(value, list) or not value:
        found = "an empty list" if value == [] else kind_of(value)
        raise reader.error(where, f"expected a list of numbers, found {found}")
    result: list[float] = []
    for i, item in enumerate(value):
        if not _is_number(item):
            raise reader.error((*where, i), f"expected a number ({what}), found {kind_of(item)}")
        if (low is not None and item < low) or (high is not None and item > high):
            bounds = f"at least {low:g}" if high is None else f"{low:g} to {high:g}"
            raise reader.error((*where, i), f"{item} is out of range: expected {bounds}")
        result.append(float(item))
    return result


def _rates(reader: TomlReader, value: Any, keys: Keys) -> list[tuple[float, float]]:
    """[[min_elevation_deg, bytes_per_s], ...], elevations strictly increasing."""
    if not isinstance(value, list) or not value:
        found = "an empty list" if value == [] else kind_of(value)
        raise reader.error(
            keys,
            f"expected a list of [min_elevation_deg, bytes_per_s] pairs, found {found}",
            hint="e.g. rates = [[5, 2.0e6], [20, 10.0e6]]",
        )
    result: list[tuple[float, float]] = []
    for i, item in enumerate(value):
        where: Keys = (*keys, i)
        if not (isinstance(item, list) and len(item) == 2 and all(map(_is_number, item))):
            if not isinstance(item, list):
                found = kind_of(item)
            elif len(item) != 2:
                found = f"a list of {len(item)}"
            else:
                found = "a list holding " + kind_of(next(x for x in item if not _is_number(x)))
            raise reader.error(
                where, f"expected [min_elevation_deg, bytes_per_s] (two numbers), found {found}"
            )
        elevation, rate = float(item[0]), float(item[1])
        if not -90 <= elevation <= 90:
            raise reader.error(
                where, f"elevation {item[0]} is out of range: expected -90 to 90 deg"
            )
        if rate < 0:
            raise reader.error(
                where, f"rate {item[1]} is out of range: expected at least 0 bytes/s"
            )
        if result and elevation <= result[-1][0]:
            raise reader.error(
                where,
                f"expected elevations in increasing order, found {item[0]} after {result[-1][0]:g}",
            )
        result.append((elevation, rate))
    return result
