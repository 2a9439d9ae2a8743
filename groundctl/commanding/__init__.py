"""Commanding: parse, validate, authorise, sign and verify commands.

Pure code (no sockets, no SQLite): `syntax` parses the one command syntax shared by the
console, procedures and the CLI; `validate` checks a command against the mission database;
`roles` says who may send what; `auth` signs commands with HMAC-SHA256 and a counter;
`verify` follows a sent command through its verification stages from telemetry and
events. `groundctl.commander` puts them together with the links and the archive.
"""
