"""The event log: every contact, transfer step, training step, battery crossing and fault,
with its simulated time (written as ``events.parquet``)."""

from __future__ import annotations

from typing import Any

import pandas as pd


class EventLog:
    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def record(self, t_s: float, kind: str, node: str, detail: str = "",
               value: float | None = None) -> None:
        self._rows.append({"t_s": float(t_s), "kind": kind, "node": node, "detail": detail,
                           "value": value})

    def extend(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.record(row["t_s"], row["kind"], row["node"], row.get("detail", ""),
                        row.get("value"))

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._rows, columns=["t_s", "kind", "node", "detail", "value"])
        return frame.sort_values("t_s", kind="stable", ignore_index=True)
