"""The console's panes: passes, telemetry, alerts, commanding, events."""
