"""Run names of DEFT's protocol switches (docs/deft.md, "Deviations from the official code"), as plain data: the DAG
names each switched run while planning (no torch, no pandas) and the protocol table reads the names back.

A switched run's rows carry the method column `METHOD@rowN:SWITCH`, e.g. `deft@row1:task.gradient=exact_vjp` or
`ddrm@row14:task=sr4_bicubic`: the deviations table's row N, the `--set` overrides as KEY=VALUE joined by commas (or
`task=TASK` for a run that solves another task), and the method whose default run it is compared with. A default
run keeps its plain method name.
"""

from __future__ import annotations

import re

RUN_NAME = re.compile(r"^(?P<method>[^@]+)@row(?P<row>[0-9]+):(?P<switch>.+)$")


def switch_text(overrides: dict, switched_task: str | None = None) -> str:
    """The switch of a run: its overrides as KEY=VALUE joined by commas, or task=TASK for a switched task."""
    if switched_task:
        return f"task={switched_task}"
    return ",".join(f"{key}={value}" for key, value in overrides.items())


def run_name(method: str, row: int, switch: str) -> str:
    """The method column of a switched run's rows."""
    return f"{method}@row{row}:{switch}"


def parse_run_name(name: str) -> tuple[str, int, str] | None:
    """(method, row, switch) of a switched run's name; None for a default run's plain method name."""
    match = RUN_NAME.match(name)
    return (match["method"], int(match["row"]), match["switch"]) if match else None
