"""The TOML config: stations, fleet, missions, links, archive -> frozen dataclasses.

One file, `groundctl.toml`. Which file is used, first match wins:
1. `--config PATH` (or the `GROUNDCTL_CONFIG` environment variable);
2. `./groundctl.toml` in the current directory;
3. the embedded demo config shipped in `data/demo/groundctl.toml`.

Every problem is a `ConfigError` naming the file, the line and the key, what was found
and what is expected; see docs/config.md for the format.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from groundctl.errors import ConfigError
from groundctl.orbits.model import Station
from groundctl.paths import data_dir
from groundctl.planning.config import PlanningConfig, read_planning
from groundctl.tomlreader import Keys, TomlReader, kind_of, parse_toml, read_text

DEFAULT_CONFIG_NAME = "groundctl.toml"
DEFAULT_ARCHIVE = "groundctl.db"
CELESTRAK_URL = "https://celestrak.org"
WALKER_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WalkerShell:
    """A synthetic shell of nodes in circular orbits (Walker delta pattern).

    Its TLEs are exact by construction (no drag), so they are never reported stale; all
    share one reference `epoch`, so positions are the same whatever window is asked for.
    """

    name_format: str
    planes: int
    per_plane: int
    altitude_km: float
    inclination_deg: float
    phasing: int = 1
    raan_offset_deg: float = 0.0
    first_catalogue_number: int = 90001
    epoch: datetime = WALKER_EPOCH


@dataclass(frozen=True)
class FleetSource:
    """Where some of the fleet's TLEs come from: exactly one of the source fields is set.

    `names` renames nodes by catalogue number; `priority` is the default priority of
    the nodes of this source in the contact plan (higher wins).
    """

    key: str
    tle_file: Path | None = None
    tle_text: str | None = None
    walker: WalkerShell | None = None
    celestrak_group: str | None = None
    celestrak_catnr: tuple[int, ...] = ()
    names: Mapping[int, str] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True)
class NodeConfig:
    """Per-node settings: contact-plan priority, mission database, command key.

    A node with `key_file` or `key_env` requires authenticated commands (HMAC-SHA256,
    docs/commanding.md); the key itself is read only when a command is signed.
    """

    name: str
    priority: int | None = None
    mission: str = ""  # a [missions] name; default: [commanding] mission
    key_file: Path | None = None
    key_env: str = ""
    downlink_hz: int | None = None  # the node's downlink and uplink frequencies (Doppler)
    uplink_hz: int | None = None

    @property
    def requires_auth(self) -> bool:
        return self.key_file is not None or bool(self.key_env)


ROLES = ("viewer", "operator", "flight-director")


@dataclass(frozen=True)
class CommandingConfig:
    """Who may command, and the mission database of nodes that do not name one.

    `operators` maps login names to roles (viewer: no commands; operator: all but
    hazardous commands; flight-director: all); anyone else has `default_role`.
    """

    default_role: str = "operator"
    operators: Mapping[str, str] = field(default_factory=dict)
    mission: str = ""

    def role_of(self, user: str) -> str:
        return self.operators.get(user, self.default_role)


@dataclass(frozen=True)
class RotatorConfig:
    """A station's antenna rotator, driven through Hamlib's rotctld, and how it tracks.

    The limits narrow the rotator's own (read from rotctld); a target outside either is
    refused before it is sent. `park` is (az, el) after LOS; None uses rotctld's park.
    """

    host: str
    port: int
    timeout_s: float = 2.0
    update_s: float = 1.0  # seconds (of the clock tracked: simulated time runs faster)
    threshold_deg: float = 2.0  # a new position is sent when the error would exceed this
    preposition_s: float = 120.0  # move to the AOS position this long before AOS
    max_lead_s: float = 10.0
    park: tuple[float, float] | None = None
    min_az: float | None = None
    max_az: float | None = None
    min_el: float | None = None
    max_el: float | None = None


@dataclass(frozen=True)
class RadioConfig:
    """A station's radio, tuned through Hamlib's rigctld: downlink on the main VFO,
    uplink on the split TX VFO (`tx_vfo`)."""

    host: str
    port: int
    timeout_s: float = 2.0
    tx_vfo: str = "VFOB"


@dataclass(frozen=True)
class StationControl:
    """The rotator and radio of a station, when it has them (`[stations.rotator]`,
    `[stations.radio]`)."""

    station: str
    rotator: RotatorConfig | None = None
    radio: RadioConfig | None = None


@dataclass(frozen=True)
class TLEConfig:
    """TLE freshness and the CelesTrak GP server used by `groundctl tle fetch`."""

    max_age_days: float = 7.0
    base_url: str = CELESTRAK_URL
    timeout_s: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class MissionConfig:
    """A mission database file (the mission database format is documented in its issue)."""

    name: str
    path: Path


@dataclass(frozen=True)
class LinkConfig:
    """A link: the adapter name and its options, validated by the adapter itself."""

    name: str
    adapter: str
    options: Mapping[str, Any] = field(default_factory=dict)
    node: str = ""  # the node it reaches (default: the link's name)
    line: int = 0  # where it is in the config file, for messages


@dataclass(frozen=True)
class OperationsConfig:
    """[operations]: share alert actions and commands with the other consoles through
    `link`'s broker (groundctl.operations); `console` is this console's name."""

    link: str
    console: str


@dataclass(frozen=True)
class Config:
    """A whole, validated config. `path` is the file it came from."""

    path: Path
    stations: tuple[Station, ...]
    fleet: tuple[FleetSource, ...]
    nodes: Mapping[str, NodeConfig]
    tle: TLEConfig
    archive_path: Path
    missions: Mapping[str, MissionConfig]
    links: Mapping[str, LinkConfig]
    commanding: CommandingConfig = field(default_factory=CommandingConfig)
    is_demo: bool = False
    # station name -> its rotator and radio (only stations that have one)
    control: Mapping[str, StationControl] = field(default_factory=dict)
    operations: OperationsConfig | None = None
    planning: PlanningConfig = field(default_factory=PlanningConfig)

    def station(self, name: str) -> Station:
        """Return the station called `name` (case-insensitive); ConfigError if none."""
        for station in self.stations:
            if station.name.lower() == name.lower():
                return station
        known = ", ".join(s.name for s in self.stations) or "none"
        raise ConfigError(
            f"{self.path}: no station named {name!r}",
            hint=f"configured stations: {known}; or give NAME,LAT,LON[,ALT_M]",
        )

    def priority_of(self, node: str, source_priority: int = 0) -> int:
        """The contact-plan priority of a node: its [nodes] entry, else its source's."""
        entry = self.nodes.get(node)
        if entry is not None and entry.priority is not None:
            return entry.priority
        return source_priority

    def mission_name(self, node: str) -> str:
        """The [missions] name of `node`'s mission database ('' when none is configured):
        its [nodes] entry, else [commanding] mission, else the only mission, else
        'odc-node' when configured."""
        entry = self.nodes.get(node)
        if entry is not None and entry.mission:
            return entry.mission
        if self.commanding.mission:
            return self.commanding.mission
        if len(self.missions) == 1:
            return next(iter(self.missions))
        return "odc-node" if "odc-node" in self.missions else ""


def demo_config_path() -> Path:
    """The embedded demo config shipped with groundctl."""
    return data_dir() / "demo" / DEFAULT_CONFIG_NAME


def resolve_config_path(explicit: str | Path | None, cwd: Path | None = None) -> Path:
    """Pick the config file: explicit path, else ./groundctl.toml, else the demo."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist",
                hint="check the --config option or the GROUNDCTL_CONFIG variable",
            )
        return path
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    if local.is_file():
        return local
    return demo_config_path()


def load_config(path: str | Path) -> Config:
    """Read and validate a config file.

    Raises ConfigError with file, line and key for a syntax error, an unknown key, a
    missing key, a value of the wrong type or out of range.
    """
    path = Path(path)
    text = read_text(path, ConfigError, "config file")
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate config `text` read from `path` (relative paths resolve against its folder)."""
    raw = parse_toml(
        text,
        path,
        ConfigError,
        hint="see docs/config.md for the format; strings need quotes, tables [brackets]",
    )
    reader = _Reader(path, text)
    return reader.config(raw)


_TOP_KEYS = {
    "stations",
    "fleet",
    "nodes",
    "tle",
    "archive",
    "missions",
    "links",
    "commanding",
    "operators",
    "operations",
    "planning",
}


class _Reader(TomlReader):
    """The config's sections, on top of the shared typed getters."""

    error_class = ConfigError

    # --- sections ---------------------------------------------------------------------
    def config(self, raw: dict[str, Any]) -> Config:
        self.check_keys(raw, _TOP_KEYS, ())
        stations = self.stations(raw.get("stations", []))
        control = self.control(raw.get("stations", []))
        fleet = self.fleet(raw.get("fleet", []))
        nodes = self.nodes(raw.get("nodes", {}))
        tle = self.tle(raw.get("tle", {}))
        archive = self.table(raw.get("archive", {}), ("archive",))
        self.check_keys(archive, {"path"}, ("archive",))
        archive_path = Path(self.string(archive, "path", ("archive",), default=DEFAULT_ARCHIVE))
        missions = self.missions(raw.get("missions", {}))
        links = self.links(raw.get("links", {}))
        commanding = self.commanding(raw.get("commanding", {}), raw.get("operators", {}))
        operations = self.operations(raw["operations"], links) if "operations" in raw else None
        planning = read_planning(self, raw.get("planning"), stations=[s.name for s in stations])
        for node in nodes.values():
            if node.mission and node.mission not in missions:
                raise self.error(
                    ("nodes", node.name, "mission"),
                    f"no mission {node.mission!r} in [missions]",
                    hint="configured missions: " + (", ".join(missions) or "none"),
                )
        if commanding.mission and commanding.mission not in missions:
            raise self.error(
                ("commanding", "mission"),
                f"no mission {commanding.mission!r} in [missions]",
                hint="configured missions: " + (", ".join(missions) or "none"),
            )
        return Config(
            path=self.path,
            stations=stations,
            fleet=fleet,
            nodes=nodes,
            tle=tle,
            archive_path=archive_path,
            missions=missions,
            links=links,
            commanding=commanding,
            is_demo=self.path.resolve() == demo_config_path().resolve(),
            control=control,
            operations=operations,
            planning=planning,
        )

    def stations(self, value: Any) -> tuple[Station, ...]:
        if not isinstance(value, list):
            raise self.error(("stations",), "expected [[stations]] tables")
        allowed = {
            "name",
            "lat_deg",
            "lon_deg",
            "alt_m",
            "min_elevation_deg",
            "horizon_mask",
            "antennas",
            "turnaround_s",
            "rotator",
            "radio",
        }
        result: list[Station] = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            keys: Keys = ("stations", i)
            entry = self.table(item, keys)
            self.check_keys(entry, allowed, keys)
            name = self.string(entry, "name", keys)
            if name.lower() in seen:
                raise self.error((*keys, "name"), f"duplicate station name {name!r}")
            seen.add(name.lower())
            mask = self.mask(entry.get("horizon_mask", []), (*keys, "horizon_mask"))
            result.append(
                Station(
                    name=name,
                    lat_deg=self.number(entry, "lat_deg", keys, low=-90, high=90, unit=" deg"),
                    lon_deg=self.number(entry, "lon_deg", keys, low=-180, high=360, unit=" deg"),
                    alt_m=self.number(entry, "alt_m", keys, default=0.0, low=-500, high=9000),
                    min_elevation_deg=self.number(
                        entry, "min_elevation_deg", keys, default=0.0, low=-5, high=89
                    ),
                    horizon_mask=mask,
                    antennas=self.integer(entry, "antennas", keys, default=1, low=1, high=64),
                    turnaround_s=self.number(
                        entry, "turnaround_s", keys, default=0.0, low=0, high=3600, unit=" s"
                    ),
                )
            )
        return tuple(result)

    def control(self, value: Any) -> dict[str, StationControl]:
        """The [stations.rotator] and [stations.radio] tables (stations() checked the
        rest)."""
        result: dict[str, StationControl] = {}
        for i, entry in enumerate(value):
            rotator = self.rotator(entry, ("stations", i, "rotator"))
            radio = self.radio(entry, ("stations", i, "radio"))
            if rotator is not None or radio is not None:
                result[entry["name"]] = StationControl(entry["name"], rotator, radio)
        return result

    def rotator(self, entry: Mapping[str, Any], keys: Keys) -> RotatorConfig | None:
        if "rotator" not in entry:
            return None
        table = self.table(entry["rotator"], keys)
        allowed = {
            "address", "timeout_s", "update_s", "threshold_deg", "preposition_s", "max_lead_s",
            "park", "min_az", "max_az", "min_el", "max_el",
        }  # fmt: skip
        self.check_keys(table, allowed, keys)

        def number(key: str, default: float, low: float, high: float, unit: str) -> float:
            return self.number(table, key, keys, default=default, low=low, high=high, unit=unit)

        host, port = self.address(table, keys, 4533)
        limits = {}
        for key, low, high in (
            ("min_az", -360, 720),
            ("max_az", -360, 720),
            ("min_el", -10, 180),
            ("max_el", -10, 180),
        ):
            if key in table:
                limits[key] = self.number(table, key, keys, low=low, high=high, unit=" deg")
        for low_key, high_key in (("min_az", "max_az"), ("min_el", "max_el")):
            if low_key in limits and high_key in limits and limits[low_key] >= limits[high_key]:
                raise self.error(
                    (*keys, high_key),
                    f"{limits[high_key]} is not above {low_key} {limits[low_key]}",
                )
        return RotatorConfig(
            host,
            port,
            timeout_s=number("timeout_s", 2.0, 0.05, 60, " s"),
            update_s=number("update_s", 1.0, 0.05, 60, " s"),
            threshold_deg=number("threshold_deg", 2.0, 0.01, 45, " deg"),
            preposition_s=number("preposition_s", 120.0, 0, 3600, " s"),
            max_lead_s=number("max_lead_s", 10.0, 0, 120, " s"),
            park=self.park(table, keys),
            **limits,
        )

    def radio(self, entry: Mapping[str, Any], keys: Keys) -> RadioConfig | None:
        if "radio" not in entry:
            return None
        table = self.table(entry["radio"], keys)
        self.check_keys(table, {"address", "timeout_s", "tx_vfo"}, keys)
        host, port = self.address(table, keys, 4532)
        return RadioConfig(
            host,
            port,
            timeout_s=self.number(table, "timeout_s", keys, default=2.0, low=0.05, high=60),
            tx_vfo=self.string(table, "tx_vfo", keys, default="VFOB"),
        )

    def address(self, table: Mapping[str, Any], keys: Keys, default_port: int) -> tuple[str, int]:
        text = self.string(table, "address", keys)
        host, _, port_text = text.rpartition(":")
        if not host:
            host, port_text = text, str(default_port)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise self.error(
                (*keys, "address"),
                f"{text!r} is not HOST:PORT",
                hint=f'e.g. address = "127.0.0.1:{default_port}"',
            )
        return host, int(port_text)

    def park(self, table: Mapping[str, Any], keys: Keys) -> tuple[float, float] | None:
        if "park" not in table:
            return None
        value = table["park"]
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)
        ):
            raise self.error(
                (*keys, "park"), "expected [azimuth_deg, elevation_deg]", hint="e.g. park = [0, 90]"
            )
        return float(value[0]), float(value[1])

    def mask(self, value: Any, keys: Keys) -> tuple[tuple[float, float], ...]:
        if not isinstance(value, list):
            raise self.error(keys, "expected a list of [azimuth_deg, elevation_deg] pairs")
        points: list[tuple[float, float]] = []
        for point in value:
            if (
                not isinstance(point, list)
                or len(point) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
            ):
                raise self.error(
                    keys,
                    f"bad point {point!r}: expected [azimuth_deg, elevation_deg]",
                    hint="e.g. horizon_mask = [[0, 5], [90, 12.5], [180, 3]]",
                )
            az, el = float(point[0]), float(point[1])
            if not 0 <= az < 360 or not -5 <= el <= 89:
                raise self.error(
                    keys,
                    f"bad point {point!r}: azimuth must be in [0, 360) deg, "
                    "elevation in [-5, 89] deg",
                )
            if points and az <= points[-1][0]:
                raise self.error(
                    keys,
                    f"azimuths must increase: {az} after {points[-1][0]}",
                    hint="list the points clockwise from north",
                )
            points.append((az, el))
        return tuple(points)

    def fleet(self, value: Any) -> tuple[FleetSource, ...]:
        if not isinstance(value, list):
            raise self.error(("fleet",), "expected [[fleet]] tables")
        kinds = ("tle_file", "tle", "walker", "celestrak_group", "celestrak_catnr")
        result = []
        for i, item in enumerate(value):
            keys: Keys = ("fleet", i)
            entry = self.table(item, keys)
            self.check_keys(entry, {*kinds, "names", "priority"}, keys)
            present = [k for k in kinds if k in entry]
            if len(present) != 1:
                raise self.error(
                    keys,
                    f"expected exactly one source, found {len(present)}"
                    + (f" ({', '.join(present)})" if present else ""),
                    hint="one of: " + ", ".join(kinds),
                )
            kind = present[0]
            names = self.names(entry.get("names", {}), (*keys, "names"))
            priority = self.integer(entry, "priority", keys, default=0, low=-1000, high=1000)
            source = FleetSource(key=f"fleet[{i}]", names=names, priority=priority)
            if kind == "tle_file":
                source = _replace(source, tle_file=self.file(entry, "tle_file", keys))
            elif kind == "tle":
                source = _replace(source, tle_text=self.string(entry, "tle", keys))
            elif kind == "walker":
                source = _replace(source, walker=self.walker(entry["walker"], (*keys, "walker")))
            elif kind == "celestrak_group":
                group = self.string(entry, "celestrak_group", keys).strip()
                if not all(c.isalnum() or c in "-_." for c in group):
                    raise self.error(
                        (*keys, "celestrak_group"), f"{group!r} is not a CelesTrak group name"
                    )
                source = _replace(source, celestrak_group=group)
            else:
                catnr = entry["celestrak_catnr"]
                if (
                    not isinstance(catnr, list)
                    or not catnr
                    or not all(
                        isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1_000_000_000
                        for n in catnr
                    )
                ):
                    raise self.error(
                        (*keys, "celestrak_catnr"),
                        "expected a list of catalogue numbers, e.g. [25544, 44714]",
                    )
                source = _replace(source, celestrak_catnr=tuple(catnr))
            result.append(source)
        return tuple(result)

    def names(self, value: Any, keys: Keys) -> dict[int, str]:
        table = self.table(value, keys)
        names: dict[int, str] = {}
        for key, name in table.items():
            if not key.isdigit():
                raise self.error(
                    (*keys, key),
                    f"expected a catalogue number as key, found {key!r}",
                    hint='e.g. names = { "44714" = "ODC-01" }',
                )
            if not isinstance(name, str) or not name.strip():
                raise self.error((*keys, key), "expected a node name string")
            names[int(key)] = name.strip()
        return names

    def walker(self, value: Any, keys: Keys) -> WalkerShell:
        entry = self.table(value, keys)
        allowed = {
            "name_format",
            "planes",
            "per_plane",
            "altitude_km",
            "inclination_deg",
            "phasing",
            "raan_offset_deg",
            "first_catalogue_number",
            "epoch",
        }
        self.check_keys(entry, allowed, keys)
        name_format = self.string(entry, "name_format", keys, default="NODE-{n:02d}")
        try:
            name_format.format(n=1, plane=1, slot=1)
        except (KeyError, ValueError, IndexError) as error:
            raise self.error(
                (*keys, "name_format"),
                f"bad format {name_format!r}: {error}",
                hint='use {n}, {plane} and {slot}, e.g. "ODC-{n:02d}"',
            ) from None
        planes = self.integer(entry, "planes", keys, low=1, high=1000)
        per_plane = self.integer(entry, "per_plane", keys, low=1, high=1000)
        first = self.integer(
            entry, "first_catalogue_number", keys, default=90001, low=1, high=99999
        )
        if first + planes * per_plane - 1 > 99999:
            raise self.error(
                (*keys, "first_catalogue_number"),
                "catalogue numbers would exceed 99999",
                hint="lower first_catalogue_number or the number of nodes",
            )
        return WalkerShell(
            name_format=name_format,
            planes=planes,
            per_plane=per_plane,
            altitude_km=self.number(entry, "altitude_km", keys, low=160, high=2000, unit=" km"),
            inclination_deg=self.number(
                entry, "inclination_deg", keys, low=0, high=180, unit=" deg"
            ),
            phasing=self.integer(entry, "phasing", keys, default=1, low=0, high=1000),
            raan_offset_deg=self.number(
                entry, "raan_offset_deg", keys, default=0.0, low=0, high=360
            ),
            first_catalogue_number=first,
            epoch=self.instant(entry, "epoch", keys, WALKER_EPOCH),
        )

    def instant(
        self, table: Mapping[str, Any], key: str, keys: Keys, default: datetime
    ) -> datetime:
        """An ISO 8601 time (TOML datetime or string); naive means UTC."""
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.error((*keys, key), f"{value!r} is not an ISO 8601 time") from None
        if not isinstance(value, datetime):
            raise self.error((*keys, key), f"expected a time, found {kind_of(value)}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def nodes(self, value: Any) -> dict[str, NodeConfig]:
        table = self.table(value, ("nodes",))
        result = {}
        for name, item in table.items():
            keys: Keys = ("nodes", name)
            entry = self.table(item, keys)
            self.check_keys(
                entry,
                {"priority", "mission", "key_file", "key_env", "downlink_hz", "uplink_hz"},
                keys,
            )
            frequencies = {
                key: self.integer(entry, key, keys, low=1, high=300_000_000_000)
                for key in ("downlink_hz", "uplink_hz")
                if key in entry
            }
            priority = (
                self.integer(entry, "priority", keys, low=-1000, high=1000)
                if "priority" in entry
                else None
            )
            key_file = self.file(entry, "key_file", keys) if "key_file" in entry else None
            key_env = self.string(entry, "key_env", keys, default="")
            if key_file is not None and key_env:
                raise self.error((*keys, "key_env"), "give key_file or key_env, not both")
            result[name] = NodeConfig(
                name=name,
                priority=priority,
                mission=self.string(entry, "mission", keys, default=""),
                key_file=key_file,
                key_env=key_env,
                **frequencies,
            )
        return result

    def commanding(self, value: Any, operators: Any) -> CommandingConfig:
        keys: Keys = ("commanding",)
        entry = self.table(value, keys)
        self.check_keys(entry, {"default_role", "mission"}, keys)
        default_role = self.string(entry, "default_role", keys, default="operator")
        if default_role not in ROLES:
            raise self.error(
                (*keys, "default_role"),
                f"{default_role!r} is not a role: expected one of {', '.join(ROLES)}",
            )
        table = self.table(operators, ("operators",))
        roles = {}
        for user, role in table.items():
            if not isinstance(role, str) or role not in ROLES:
                raise self.error(
                    ("operators", user),
                    f"expected a role ({', '.join(ROLES)}), found {role!r}",
                )
            roles[user] = role
        return CommandingConfig(
            default_role=default_role,
            operators=roles,
            mission=self.string(entry, "mission", keys, default=""),
        )

    def operations(self, value: Any, links: Mapping[str, LinkConfig]) -> OperationsConfig:
        keys: Keys = ("operations",)
        entry = self.table(value, keys)
        self.check_keys(entry, {"link", "console"}, keys)
        link = self.string(entry, "link", keys)
        if link not in links:
            raise self.error(
                (*keys, "link"),
                f"no link {link!r} in [links]: expected the link whose broker carries "
                "the shared operations",
                hint="configured links: " + (", ".join(links) or "none"),
            )
        console = self.string(entry, "console", keys, default=platform.node() or "console")
        if not console or any(c in console for c in "#+/") or console != console.strip():
            raise self.error(
                (*keys, "console"),
                f"expected a console name without '#', '+', '/' or spaces around it, "
                f"found {console!r}",
            )
        return OperationsConfig(link=link, console=console)

    def tle(self, value: Any) -> TLEConfig:
        entry = self.table(value, ("tle",))
        keys: Keys = ("tle",)
        self.check_keys(entry, {"max_age_days", "base_url", "timeout_s", "retries"}, keys)
        base_url = self.string(entry, "base_url", keys, default=CELESTRAK_URL)
        if not base_url.startswith(("http://", "https://")):
            raise self.error((*keys, "base_url"), f"expected an http(s) URL, found {base_url!r}")
        return TLEConfig(
            max_age_days=self.number(entry, "max_age_days", keys, default=7.0, low=0.01, high=3650),
            base_url=base_url.rstrip("/"),
            timeout_s=self.number(entry, "timeout_s", keys, default=10.0, low=0.1, high=600),
            retries=self.integer(entry, "retries", keys, default=3, low=0, high=20),
        )

    def missions(self, value: Any) -> dict[str, MissionConfig]:
        table = self.table(value, ("missions",))
        result = {}
        for name, item in table.items():
            keys: Keys = ("missions", name)
            entry = self.table(item, keys)
            self.check_keys(entry, {"path"}, keys)
            result[name] = MissionConfig(name=name, path=self.file(entry, "path", keys))
        return result

    def links(self, value: Any) -> dict[str, LinkConfig]:
        table = self.table(value, ("links",))
        result = {}
        for name, item in table.items():
            keys: Keys = ("links", name)
            entry = dict(self.table(item, keys))
            adapter = self.string(entry, "adapter", keys)
            del entry["adapter"]
            node = name
            if "node" in entry:
                node = self.string(entry, "node", keys)
                del entry["node"]
            result[name] = LinkConfig(
                name=name, adapter=adapter, options=entry, node=node, line=self.line_of(keys) or 0
            )
        return result


def _replace(source: FleetSource, **changes: Any) -> FleetSource:
    from dataclasses import replace

    return replace(source, **changes)
