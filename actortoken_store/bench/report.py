"""The bench's results: the JSON document and the printed table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

__all__ = ["RESULT_KEYS", "Results", "Row"]

RESULT_KEYS: Final = (
    "save_many_rows_per_s",
    "copy_rows_per_s",
    "orm_add_all_rows_per_s",
    "import_rows_per_s",
    "get_p50_us",
    "raw_get_p50_us",
    "list_for_user_p50_us",
    "raw_list_for_user_p50_us",
    "transition_p50_us",
    "raw_transition_p50_us",
    "actor_summary_30d_ms",
    "import_peak_rss_mb_100k",
    "import_peak_rss_mb_1m",
)
"""The measured numbers of the JSON output; a number that was not measured is null."""


@dataclass(frozen=True)
class Row:
    """One line of the printed table."""

    metric: str
    store: str
    reference: str = ""
    ratio: str = ""
    target: str = ""


@dataclass
class Results:
    """Numbers by `RESULT_KEYS` name, the table lines, row counts and versions."""

    values: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(RESULT_KEYS))
    rows: list[Row] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, value: float) -> None:
        if key not in self.values:
            raise KeyError(f"unknown result key {key!r}")
        self.values[key] = round(value, 3)

    def document(self) -> dict[str, Any]:
        """Return the JSON document: every result key, then ``rows`` and ``versions``."""
        return {**self.values, "rows": dict(self.row_counts), "versions": dict(self.versions)}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.document(), indent=2) + "\n", encoding="utf-8")

    def print_table(self, out: TextIO) -> None:
        header = Row("metric", "store", "raw reference", "ratio", "target")
        lines = [header, *self.rows]
        widths = [
            max(len(getattr(line, name)) for line in lines)
            for name in ("metric", "store", "reference", "ratio", "target")
        ]
        for index, line in enumerate(lines):
            cells = (line.metric, line.store, line.reference, line.ratio, line.target)
            padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            out.write("  ".join(padded).rstrip())
            out.write("\n")
            if index == 0:
                out.write("  ".join("-" * width for width in widths) + "\n")
        out.write(_describe(self.row_counts, "rows"))
        out.write(_describe(self.versions, "versions"))


def _describe(values: Mapping[str, object], label: str) -> str:
    return f"{label}: " + ", ".join(f"{key} {value}" for key, value in values.items()) + "\n"
