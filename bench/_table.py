"""Print benchmark rows as a rich table, and optionally as a Markdown table for the README."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def show(title: str, rows: Sequence[dict[str, Any]], markdown: bool = False) -> None:
    if not rows:
        return
    cols = list(rows[0])
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*[str(r[c]) for c in cols])
    Console().print(table)
    if markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
