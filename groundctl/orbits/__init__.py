"""Orbits: TLE ingest and checks, pass prediction, contact plan.

Pure package: fed data, returns data; no sockets, no SQLite, no Textual.
"""
