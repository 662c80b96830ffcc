"""Import sources in a format the importer cannot read are named as such."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from actortoken_store.errors import InputReadError
from actortoken_store.importer import read_tokens


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tokens.jsonl", "{}")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("tokens.zip", _zip_bytes(), "is a zip archive"),
        ("tokens.jsonl.bz2", bz2.compress(b"{}"), "is bzip2-compressed"),
        ("tokens.jsonl.gz", b"this is not gzip\n", "named .gz but is not gzip-compressed"),
    ],
    ids=["zip", "bzip2", "fake-gzip"],
)
def test_source_format_named(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(InputReadError, match=expected):
        list(read_tokens(path))


def test_gz_named_json_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "plain.json.gz"
    path.write_text("[]", encoding="utf-8")
    assert list(read_tokens(path)) == []
    real = tmp_path / "real.jsonl.gz"
    real.write_bytes(gzip.compress(json.dumps([]).encode()))
    assert list(read_tokens(real)) == []
