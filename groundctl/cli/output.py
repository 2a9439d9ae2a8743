"""Machine-readable output shared by the commands: JSON lists and CSV, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import click


def echo_json(records: Iterable[dict[str, Any]]) -> None:
    """A JSON list on stdout, one record per line, written as it is read (constant memory)."""
    first = True
    for record in records:
        click.echo(("[\n " if first else ",\n ") + json.dumps(record), nl=False)
        first = False
    click.echo("[]" if first else "\n]")


def echo_csv(records: Iterable[dict[str, Any]], fields: Sequence[str]) -> None:
    """CSV with a header row on stdout, written in 64 KiB pieces as records are read."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record)
        if buffer.tell() > 1 << 16:
            click.echo(buffer.getvalue(), nl=False)
            buffer.seek(0)
            buffer.truncate()
    click.echo(buffer.getvalue(), nl=False)
