"""The README's library example runs as written against the test database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy
from sqlalchemy import Engine

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Use it as a library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README's library section has no Python example"
    return match.group(1)


def test_readme_example_runs(database_url: sqlalchemy.URL, clean_engine: Engine) -> None:
    environment = {
        **os.environ,
        "ACTORTOKEN_STORE_DATABASE_URL": database_url.render_as_string(hide_password=False),
    }
    runs = [
        subprocess.run(
            [sys.executable, "-c", library_example()],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]

    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == "inserted\nact_2ReadmeExampleToken00000000 revoked\n"
    assert runs[1].returncode == 0, runs[1].stderr
    assert runs[1].stdout == "unchanged\n"
