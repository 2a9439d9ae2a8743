"""groundctl-mqtt: station agents and consoles over an MQTT broker.

`MqttLink` (entry point `mqtt` in `groundctl.links`) is a console's link to a station
agent; `groundctl_mqtt.agent` runs the agent (`groundctl agent`, entry point `agent` in
`groundctl.commands`); `groundctl_mqtt.wire` is the pure wire format both use.
"""

from groundctl_mqtt.link import MqttLink
from groundctl_mqtt.wire import WireError, WireFrame, decode_frame, encode_frame, topic

__all__ = ["MqttLink", "WireError", "WireFrame", "decode_frame", "encode_frame", "topic"]
