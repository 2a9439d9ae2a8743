"""The config's commanding parts: [operators], [commanding], [nodes.X] mission and keys.

Configs are written in tmp_path; every error must name the file, the line and the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from groundctl.config import CommandingConfig, load_config
from groundctl.errors import ConfigError

ROOT = Path(__file__).parents[1]
ODC = ROOT / "data" / "missions" / "odc-node.toml"
CFS = ROOT / "data" / "missions" / "cfs-lab.toml"

BASE = f"""\
[missions.odc-node]
path = "{ODC}"

[missions.cfs-lab]
path = "{CFS}"

[nodes.ODC-07]
priority = 3

[nodes.cfs]
mission = "cfs-lab"
key_file = "keys/cfs.key"

[nodes.ODC-08]
key_env = "ODC08_KEY"

[commanding]
default_role = "viewer"

[operators]
fiona = "flight-director"
olga = "operator"
vera = "viewer"
"""


def write(tmp_path: Path, text: str) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "cfs.key").write_text("00" * 32 + "\n")
    path = tmp_path / "groundctl.toml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, caught.value


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line containing `needle`: the oracle for error lines."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def test_operators_and_default_role(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    commanding = cfg.commanding
    assert commanding.default_role == "viewer"
    assert dict(commanding.operators) == {
        "fiona": "flight-director",
        "olga": "operator",
        "vera": "viewer",
    }
    assert commanding.role_of("fiona") == "flight-director"
    assert commanding.role_of("olga") == "operator"
    assert commanding.role_of("vera") == "viewer"
    assert commanding.role_of("mallory") == "viewer"  # anyone else: the default role
    assert commanding.mission == ""


def test_without_commanding_sections_everyone_is_an_operator(tmp_path):
    text = BASE.split("[commanding]")[0]
    cfg = load_config(write(tmp_path, text))
    assert cfg.commanding == CommandingConfig()
    assert cfg.commanding.role_of("anyone") == "operator"


def test_nodes_keep_mission_and_key_settings(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    odc7, cfs, odc8 = cfg.nodes["ODC-07"], cfg.nodes["cfs"], cfg.nodes["ODC-08"]
    assert (odc7.priority, odc7.mission, odc7.requires_auth) == (3, "", False)
    assert cfs.mission == "cfs-lab"
    assert cfs.key_file == tmp_path / "keys" / "cfs.key"  # relative to the config's folder
    assert cfs.key_env == "" and cfs.requires_auth
    assert (odc8.key_file, odc8.key_env, odc8.requires_auth) == (None, "ODC08_KEY", True)


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            'vera = "viewer"',
            'vera = "admin"',
            "operators.vera",
            "expected a role (viewer, operator, flight-director), found 'admin'",
        ),
        (
            'olga = "operator"',
            "olga = 2",
            "operators.olga",
            "expected a role (viewer, operator, flight-director), found 2",
        ),
        (
            'fiona = "flight-director"',
            'fiona = "Flight-Director"',
            "operators.fiona",
            "found 'Flight-Director'",
        ),
        (
            'default_role = "viewer"',
            'default_role = "root"',
            "commanding.default_role",
            "'root' is not a role: expected one of viewer, operator, flight-director",
        ),
        (
            'default_role = "viewer"',
            'default_role = "viewer"\nsuperuser = "fiona"',
            "commanding.superuser",
            "unknown key 'superuser'",
        ),
    ],
)
def test_bad_roles_name_file_line_and_key(tmp_path, old, new, key, expected):
    text = BASE.replace(old, new)
    path, error = load_error(tmp_path, text)
    line = line_of(text, new.splitlines()[-1])
    assert error.message.startswith(f"{path}:{line}: {key}: "), error.message
    assert expected in error.message


def test_a_node_mission_must_be_configured(tmp_path):
    text = BASE.replace('mission = "cfs-lab"', 'mission = "cfs-flight"')
    path, error = load_error(tmp_path, text)
    line = line_of(text, 'mission = "cfs-flight"')
    assert (
        error.message == f"{path}:{line}: nodes.cfs.mission: no mission 'cfs-flight' in [missions]"
    )
    assert error.hint == "configured missions: odc-node, cfs-lab"


def test_the_commanding_mission_must_be_configured(tmp_path):
    text = BASE.replace('default_role = "viewer"', 'mission = "pus-sat"')
    path, error = load_error(tmp_path, text)
    line = line_of(text, 'mission = "pus-sat"')
    assert error.message == f"{path}:{line}: commanding.mission: no mission 'pus-sat' in [missions]"
    assert error.hint == "configured missions: odc-node, cfs-lab"


def test_a_node_mission_with_no_missions_at_all(tmp_path):
    text = BASE.split("[nodes.ODC-07]")[1].replace('key_file = "keys/cfs.key"', "")
    text = "[nodes.ODC-07]" + text
    _, error = load_error(tmp_path, text)
    assert "nodes.cfs.mission: no mission 'cfs-lab' in [missions]" in error.message
    assert error.hint == "configured missions: none"


def test_key_file_and_key_env_together_are_refused(tmp_path):
    text = BASE.replace(
        'key_file = "keys/cfs.key"', 'key_file = "keys/cfs.key"\nkey_env = "CFS_KEY"'
    )
    path, error = load_error(tmp_path, text)
    line = line_of(text, 'key_env = "CFS_KEY"')
    assert error.message == f"{path}:{line}: nodes.cfs.key_env: give key_file or key_env, not both"


def test_a_missing_key_file_is_refused(tmp_path):
    text = BASE.replace('key_file = "keys/cfs.key"', 'key_file = "keys/lost.key"')
    path, error = load_error(tmp_path, text)
    line = line_of(text, 'key_file = "keys/lost.key"')
    missing = tmp_path / "keys" / "lost.key"
    assert error.message == f"{path}:{line}: nodes.cfs.key_file: file {missing} does not exist"
    assert "config file's folder" in error.hint


def test_unknown_node_key_is_refused(tmp_path):
    text = BASE.replace("priority = 3", "priority = 3\nkey = 'abc'")
    path, error = load_error(tmp_path, text)
    line = line_of(text, "key = 'abc'")
    assert error.message == f"{path}:{line}: nodes.ODC-07.key: unknown key 'key'"
    assert error.hint == (
        "allowed here: downlink_hz, key_env, key_file, mission, priority, uplink_hz"
    )


# --- mission_name precedence -------------------------------------------------------------------


def test_mission_name_prefers_the_node_entry_then_commanding_mission(tmp_path):
    text = BASE.replace('default_role = "viewer"', 'mission = "cfs-lab"')
    cfg = load_config(write(tmp_path, text))
    text_odc = text.replace("[nodes.ODC-07]\npriority = 3", '[nodes.ODC-07]\nmission = "odc-node"')
    cfg_odc = load_config(write(tmp_path, text_odc))
    assert cfg.mission_name("cfs") == "cfs-lab"  # its own entry
    assert cfg.mission_name("ODC-07") == "cfs-lab"  # entry without a mission: [commanding]
    assert cfg.mission_name("NOT-CONFIGURED") == "cfs-lab"  # no entry: [commanding]
    assert cfg_odc.mission_name("ODC-07") == "odc-node"  # the entry beats [commanding]
    assert cfg_odc.mission_name("ODC-08") == "cfs-lab"


def test_mission_name_falls_back_to_odc_node_among_several(tmp_path):
    cfg = load_config(write(tmp_path, BASE))  # two missions, no [commanding] mission
    assert cfg.mission_name("cfs") == "cfs-lab"
    assert cfg.mission_name("ODC-07") == "odc-node"
    assert cfg.mission_name("ANY") == "odc-node"


def test_mission_name_takes_the_only_mission(tmp_path):
    text = f'[missions.lab]\npath = "{CFS}"\n\n[nodes.X]\npriority = 1\n'
    cfg = load_config(write(tmp_path, text))
    assert cfg.mission_name("X") == "lab"
    assert cfg.mission_name("Y") == "lab"


def test_mission_name_is_empty_when_nothing_fits(tmp_path):
    several = f'[missions.a]\npath = "{CFS}"\n\n[missions.b]\npath = "{ODC}"\n'
    assert load_config(write(tmp_path, several)).mission_name("X") == ""
    assert load_config(write(tmp_path, "[nodes.X]\npriority = 1\n")).mission_name("X") == ""
