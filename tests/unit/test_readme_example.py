"""The FastAPI example in the README is the file the tests run, character for character."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"<!-- BEGIN async-and-clerk.*?<!-- END async-and-clerk -->", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_readme_example_matches_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / "examples" / "fastapi_app.py").read_text(encoding="utf-8")

    section = SECTION.search(readme)
    assert section is not None, "README has no async-and-clerk section"
    blocks = PYTHON_BLOCK.findall(section.group(0))
    assert blocks == [example]
