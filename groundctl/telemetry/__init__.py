"""Telemetry: limit states and persistence, sequence-count tracking, staleness.

Pure package: fed decoded values and times, returns states and events; no sockets, no
SQLite, no Textual.
"""
