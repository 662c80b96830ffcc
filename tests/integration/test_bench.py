"""The bench runs end to end in quick mode, so it cannot rot. It checks no speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy

from actortoken_store.bench.cli import main
from actortoken_store.bench.report import RESULT_KEYS


def test_bench_quick_run(
    admin_url: sqlalchemy.URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bench.json"
    server = admin_url.render_as_string(hide_password=False)

    code = main(["--quick", "--database-url", server, "--json", str(output)])

    assert code == 0
    document = json.loads(output.read_text(encoding="utf-8"))
    assert set(document) == {*RESULT_KEYS, "rows", "versions"}
    measured = [key for key in RESULT_KEYS if document[key] is not None]
    assert "save_many_rows_per_s" in measured
    assert "raw_transition_p50_us" in measured
    for key in measured:
        assert document[key] > 0, key
    assert document["rows"]["bulk"] > 0
    assert document["versions"]["postgresql"]
    table = capsys.readouterr().out
    assert "save_many rows/s" in table
