"""The `mosquitto` fixture: a real broker for each test that asks for it (see
mqtt_testbroker.py), skipped, saying why, when mosquitto is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_testbroker import MOSQUITTO, MOSQUITTO_PASSWD, Mosquitto, missing


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        missing("mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
    directory = tmp_path / "broker"
    directory.mkdir()
    broker = Mosquitto(directory)
    broker.start()
    yield broker
    broker.stop()
