"""Imports of JSON Lines files, each in a child process: speed and peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from actortoken_store.bench.synthetic import SyntheticTokens

__all__ = ["ImportRun", "run_import", "write_jsonl"]


@dataclass(frozen=True)
class ImportRun:
    """The outcome of one import."""

    records: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.records / self.seconds


def write_jsonl(population: SyntheticTokens, path: Path) -> int:
    """Write ``population`` to ``path`` as JSON Lines; return the number of lines."""
    with path.open("w", encoding="utf-8") as out:
        return population.write_jsonl(out)


def run_import(url: sqlalchemy.URL, path: Path) -> ImportRun:
    """Import ``path`` in a child process and measure it.

    Raises:
        RuntimeError: the child failed or rejected records.
    """
    command = [
        sys.executable,
        "-m",
        "actortoken_store.bench.probe",
        url.render_as_string(hide_password=False),
        str(path),
    ]
    child = subprocess.run(command, capture_output=True, check=False)
    if child.returncode != 0:
        raise RuntimeError(
            f"the import probe failed with exit status {child.returncode}: "
            f"{child.stderr.decode(errors='replace').strip()}"
        )
    result = json.loads(child.stdout)
    if result["rejected"]:
        raise RuntimeError(f"the import probe rejected {result['rejected']} synthetic records")
    return ImportRun(result["records"], result["seconds"], result["peak_rss_mb"])
