"""Mission database: model, TOML loader, packet codec, safe expressions.

Pure package: no sockets, no SQLite, no Textual.
"""
