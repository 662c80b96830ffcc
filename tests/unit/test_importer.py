"""Reading import input without a database: layouts, compression, line numbers, damage."""

from __future__ import annotations

import gzip
import io
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from actortoken_store.errors import InputReadError
from actortoken_store.importer import ParsedRecord, read_tokens
from actortoken_store.jsonstream import read_json_records
from actortoken_store.model import ActorToken
from actortoken_store.sources import open_source
from tests.conftest import fixture_file

TICKET = "eyJhbGciOiJSUzI1NiJ9.eyJzdCI6ImFjdG9yX3Rva2VuIn0.c2lnbmF0dXJlLW5vdC1yZWFs"


def record(number: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "object": "actor_token",
        "id": f"act_{number:04d}",
        "status": "pending",
        "user_id": "user_one",
        "actor": {"sub": "user_support", "reason": "test"},
        "token": TICKET,
        "url": f"https://accounts.example.test/v1/tickets/accept?ticket={TICKET}",
        "created_at": 1_775_000_000_000 + number,
        "updated_at": 1_775_000_000_000 + number,
    }
    data.update(changes)
    return data


def line_of(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def parse(data: bytes) -> list[ParsedRecord]:
    return list(read_tokens(io.BytesIO(data)))


def ids(records: list[ParsedRecord]) -> list[str | None]:
    return [None if item.token is None else item.token.id for item in records]


def test_jsonl_lines_and_tokens() -> None:
    data = b"\n".join(line_of(record(number)) for number in range(3)) + b"\n"
    records = parse(data)
    assert [item.line for item in records] == [1, 2, 3]
    assert ids(records) == ["act_0000", "act_0001", "act_0002"]
    assert all(item.reason is None for item in records)


def test_jsonl_blank_lines_keep_numbering() -> None:
    data = b"\n\n" + line_of(record(1)) + b"\n   \n\n" + line_of(record(2)) + b"\n\n"
    assert [item.line for item in parse(data)] == [3, 6]


def test_jsonl_crlf_line_endings() -> None:
    data = line_of(record(1)) + b"\r\n" + line_of(record(2)) + b"\r\n"
    records = parse(data)
    assert [item.line for item in records] == [1, 2]
    assert ids(records) == ["act_0001", "act_0002"]


def test_single_object_compact() -> None:
    records = parse(line_of(record(7)))
    assert ids(records) == ["act_0007"]
    assert records[0].line == 1


def test_single_object_pretty_camel_case() -> None:
    data = record(8)
    camel = {
        "object": data["object"],
        "id": data["id"],
        "status": data["status"],
        "userId": data["user_id"],
        "actor": data["actor"],
        "token": data["token"],
        "url": data["url"],
        "createdAt": data["created_at"],
        "updatedAt": data["updated_at"],
    }
    records = parse(b"\n" + json.dumps(camel, indent=2).encode())
    assert [item.line for item in records] == [2]
    assert records[0].token == ActorToken.from_clerk(data)


def test_pretty_objects_one_after_another() -> None:
    first = json.dumps(record(1), indent=2).encode()
    second = json.dumps(record(2), indent=4).encode()
    records = parse(first + b"\n" + second + b"\n")
    assert ids(records) == ["act_0001", "act_0002"]
    assert [item.line for item in records] == [1, first.count(b"\n") + 2]


def test_array_pretty_element_lines() -> None:
    data = json.dumps([record(1), record(2), record(3)], indent=2).encode()
    records = parse(data)
    assert ids(records) == ["act_0001", "act_0002", "act_0003"]
    text = data.decode().splitlines()
    element_lines = [number for number, line in enumerate(text, 1) if line == "  {"]
    assert [item.line for item in records] == element_lines


def test_array_compact_one_line() -> None:
    records = parse(json.dumps([record(1), record(2)]).encode())
    assert ids(records) == ["act_0001", "act_0002"]
    assert [item.line for item in records] == [1, 1]


def test_array_empty() -> None:
    assert parse(b"  [ \n ]  \n") == []


def test_empty_input() -> None:
    assert parse(b"") == []
    assert parse(b" \n\n\t") == []


def test_byte_order_mark_skipped() -> None:
    records = parse(b"\xef\xbb\xbf" + line_of(record(1)))
    assert ids(records) == ["act_0001"]


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.jsonl.gz"
    path.write_bytes(gzip.compress(line_of(record(1)) + b"\n" + line_of(record(2)) + b"\n"))
    records = list(read_tokens(path))
    assert ids(records) == ["act_0001", "act_0002"]
    assert [item.line for item in records] == [1, 2]


def test_gzip_stream_detected_by_magic() -> None:
    compressed = gzip.compress(json.dumps([record(1), record(2)], indent=2).encode())
    assert ids(parse(compressed)) == ["act_0001", "act_0002"]


def test_gzip_truncated_keeps_earlier_records() -> None:
    lines = b"".join(line_of(record(number)) + b"\n" for number in range(2000))
    compressed = gzip.compress(lines)
    records = parse(compressed[: len(compressed) // 2])
    valid = [item for item in records if item.token is not None]
    rejected = [item for item in records if item.token is None]
    assert len(valid) > 100
    assert ids(valid) == [f"act_{number:04d}" for number in range(len(valid))]
    assert rejected
    assert "failed to read" in (rejected[-1].reason or "")
    assert rejected[-1].line >= len(valid)


def test_gzip_corrupt_header() -> None:
    records = parse(b"\x1f\x8b" + b"not really gzip data")
    assert len(records) == 1
    assert records[0].token is None
    assert "failed to read" in (records[0].reason or "")


def test_stdin_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    data = line_of(record(1)) + b"\n" + line_of(record(2)) + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    records = list(read_tokens("-"))
    assert ids(records) == ["act_0001", "act_0002"]


def test_stdin_dash_gzip(monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(line_of(record(1)) + b"\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert ids(list(read_tokens("-"))) == ["act_0001"]


def test_text_stream() -> None:
    text = io.StringIO(json.dumps(record(1)) + "\n" + json.dumps(record(2)) + "\n")
    assert ids(list(read_tokens(text))) == ["act_0001", "act_0002"]


def test_caller_stream_left_open() -> None:
    stream = io.BytesIO(line_of(record(1)))
    assert ids(list(read_tokens(stream))) == ["act_0001"]
    assert not stream.closed


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(InputReadError, match=r"absent\.jsonl"):
        list(read_tokens(missing))


def test_invalid_utf8_line_rejected() -> None:
    bad = line_of(record(2)).replace(b'"test"', b'"t\xffst"')
    data = line_of(record(1)) + b"\n" + bad + b"\n" + line_of(record(3)) + b"\n"
    records = parse(data)
    assert ids(records) == ["act_0001", None, "act_0003"]
    assert records[1].line == 2
    assert records[1].reason == "invalid actor token: <record>: not valid UTF-8"


def test_invalid_utf8_outside_strings() -> None:
    data = line_of(record(1)) + b"\n\xfe\xff\n" + line_of(record(3)) + b"\n"
    records = parse(data)
    assert ids(records) == ["act_0001", None, "act_0003"]
    assert records[1].reason == "invalid actor token: <record>: not valid UTF-8"


def test_truncated_line_in_middle() -> None:
    truncated = line_of(record(2))[:40]
    data = line_of(record(1)) + b"\n" + truncated + b"\n" + line_of(record(3)) + b"\n"
    records = parse(data)
    assert ids(records) == ["act_0001", None, "act_0003"]
    assert records[1].line == 2
    assert "not valid JSON" in (records[1].reason or "")


def test_truncated_last_line() -> None:
    data = line_of(record(1)) + b"\n" + line_of(record(2))[:60]
    records = parse(data)
    assert ids(records) == ["act_0001", None]
    assert records[1].line == 2
    assert records[1].reason == (
        "invalid actor token: <record>: not valid JSON: "
        "the input ends before the record is complete"
    )


def test_garbage_lines_each_rejected() -> None:
    data = b"\n".join([line_of(record(1)), b"not json", b"{oops", line_of(record(4))])
    records = parse(data)
    assert ids(records) == ["act_0001", None, None, "act_0004"]
    assert [item.line for item in records] == [1, 2, 3, 4]


def test_syntax_error_names_position() -> None:
    records = parse(line_of(record(1)) + b'\n{"id": "x",, "status": 1}\n')
    assert records[1].reason == (
        "invalid actor token: <record>: not valid JSON: "
        "Expecting property name enclosed in double quotes (line 2, column 12)"
    )


def test_top_level_scalar_rejected() -> None:
    for document, kind in [(b"42", "a number"), (b'"text"', "a string"), (b"null", "null")]:
        records = parse(document)
        assert len(records) == 1
        assert records[0].reason == (
            f"invalid actor token: <record>: expected a JSON object, got {kind}"
        )


def test_json_string_holding_json_rejected() -> None:
    records = parse(json.dumps(json.dumps(record(1))).encode())
    assert records[0].token is None
    assert (
        records[0].reason == "invalid actor token: <record>: expected a JSON object, got a string"
    )


def test_array_non_object_elements() -> None:
    data = json.dumps([record(1), 5, [record(2)], True, record(3)], indent=2).encode()
    records = parse(data)
    assert ids(records) == ["act_0001", None, None, None, "act_0003"]
    reasons = [item.reason for item in records if item.reason]
    assert reasons == [
        "invalid actor token: <record>: expected a JSON object, got a number",
        "invalid actor token: <record>: expected a JSON object, got an array",
        "invalid actor token: <record>: expected a JSON object, got a boolean",
    ]


def test_array_broken_element_recovers() -> None:
    good = [json.dumps(record(number)) for number in range(4)]
    good[1] = good[1].replace('"status": "pending",', '"status": "pending" "oops",')
    data = ("[\n" + ",\n".join(good) + "\n]\n").encode()
    records = parse(data)
    assert ids(records) == ["act_0000", None, "act_0002", "act_0003"]
    assert [item.line for item in records] == [2, 3, 4, 5]


def test_array_missing_closing_bracket() -> None:
    data = ("[\n" + json.dumps(record(1)) + ",\n" + json.dumps(record(2)) + "\n").encode()
    records = parse(data)
    assert ids(records) == ["act_0001", "act_0002", None]
    assert records[2].reason == (
        "invalid actor token: <record>: not valid JSON: "
        "the input ends inside the JSON array, before its closing ']'"
    )


def test_array_trailing_comma() -> None:
    data = ("[" + json.dumps(record(1)) + ",\n]").encode()
    records = parse(data)
    assert ids(records) == ["act_0001", None]
    assert records[1].line == 2
    assert "trailing comma" in (records[1].reason or "")


def test_array_data_after_end() -> None:
    records = parse(("[" + json.dumps(record(1)) + "]\n{}").encode())
    assert ids(records) == ["act_0001", None]
    assert "after the JSON array" in (records[1].reason or "")


def test_pretty_object_broken_once() -> None:
    broken = json.dumps(record(1), indent=2).replace('"status": "pending",', '"status" "pending",')
    good = json.dumps(record(2), indent=2)
    records = parse(f"{good}\n{broken}\n{good}\n".encode())
    assert ids(records) == ["act_0002", None, "act_0002"]


def test_nan_rejected() -> None:
    data = line_of(record(1)).replace(b'"test"', b"NaN")
    records = parse(data + b"\n" + line_of(record(2)))
    assert ids(records) == [None, "act_0002"]
    assert (
        records[0].reason
        == "invalid actor token: <record>: not valid JSON: NaN is not a JSON number"
    )


def test_duplicate_key_rejected() -> None:
    data = line_of(record(1)).replace(
        b'"status": "pending"', b'"status": "accepted", "status": "pending"'
    )
    records = parse(data + b"\n" + line_of(record(2)))
    assert ids(records) == [None, "act_0002"]
    assert records[0].reason == (
        "invalid actor token: <record>: not valid JSON for a token: "
        "an object has the key 'status' twice"
    )


def test_invalid_field_reason() -> None:
    records = parse(line_of(record(1, status="expired")))
    assert records[0].reason == (
        "invalid actor token: status: 'expired' is not one of 'pending', 'accepted', 'revoked'"
    )


def test_reasons_never_contain_ticket() -> None:
    cases = [
        record(1, status="expired"),
        record(2, created_at="yesterday"),
        record(3, actor={"name": "no sub"}),
        record(4, updated_at=1),
    ]
    records = parse(b"\n".join(line_of(case) for case in cases))
    assert all(item.token is None for item in records)
    for item in records:
        assert TICKET not in (item.reason or "")
        assert TICKET[:20] not in (item.reason or "")


def test_deep_nesting_rejected() -> None:
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    records = parse(deep + b"\n" + line_of(record(1)))
    assert ids(records) == [None, "act_0001"]
    assert records[0].reason == "invalid actor token: <record>: not valid JSON: nested too deeply"


def test_record_size_limit() -> None:
    big = json.dumps(record(1, actor={"sub": "x", "pad": "y" * 5000})) + "\n"
    small = json.dumps(record(2)) + "\n"
    found = list(read_json_records(io.StringIO(big + small), chunk_chars=64, max_record_chars=1000))
    assert found[0].error == (
        "invalid actor token: <record>: not valid JSON: the record is longer than 1000 characters"
    )
    assert found[1].error is None
    assert found[1].line == 2


def test_long_line_error_column() -> None:
    elements = ",".join(json.dumps(record(number)) for number in range(50))
    document = "[" + elements + ",}]"
    found = list(read_json_records(io.StringIO(document), chunk_chars=100))
    assert [item.error is None for item in found[:50]] == [True] * 50
    assert found[50].error is not None
    assert found[50].error.endswith(f"(line 1, column {len(document) - 1})")


@pytest.mark.parametrize("chunk_chars", [13, 509, 65536])
def test_chunk_boundaries_fixture(chunk_chars: int) -> None:
    path = fixture_file("actor_tokens.jsonl")
    expected = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open_source(path) as text:
        found = list(read_json_records(text, chunk_chars=chunk_chars))
    assert [item.value for item in found] == expected
    assert [item.line for item in found] == list(range(1, len(expected) + 1))


def test_camel_file_matches_snake_twins() -> None:
    snake = [item.token for item in read_tokens(fixture_file("actor_tokens.jsonl"))]
    camel = list(read_tokens(fixture_file("actor_tokens_camel.json")))
    assert all(item.reason is None for item in camel)
    assert [item.token for item in camel] == snake[:20]


@pytest.mark.parametrize("chunk_chars", [5, 333])
def test_chunk_boundaries_pretty_array(chunk_chars: int) -> None:
    path = fixture_file("actor_tokens_camel.json")
    expected = json.loads(path.read_text(encoding="utf-8"))
    with open_source(path) as text:
        found = list(read_json_records(text, chunk_chars=chunk_chars))
    assert [item.value for item in found] == expected
    lines = path.read_text(encoding="utf-8").splitlines()
    element_lines = [number for number, line in enumerate(lines, 1) if line == "  {"]
    assert [item.line for item in found] == element_lines


class RepeatedText:
    """A text source that produces ``head``, then ``body`` ``count`` times, then ``tail``."""

    def __init__(self, head: str, body: str, count: int, tail: str) -> None:
        self.pending = [head]
        self.body = body
        self.count = count
        self.tail: str | None = tail

    def read(self, size: int, /) -> str:
        if self.pending:
            return self.pending.pop()
        if self.count > 0:
            repeat = max(1, min(self.count, size // len(self.body)))
            self.count -= repeat
            return self.body * repeat
        tail, self.tail = self.tail, None
        return tail or ""


def test_broken_single_line_array_memory() -> None:
    # Nothing after the damaged element starts a new line, so the rest is skipped, and
    # the skipped text must not pile up in memory.
    source = RepeatedText('[{"a": 1 "b": 2},', '{"x": 1},', 500_000, '{"x": 1}]')
    tracemalloc.start()
    try:
        found = list(read_json_records(source, chunk_chars=4096))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == 1
    assert found[0].error is not None
    assert peak < 1_000_000


def test_long_jsonl_line_memory() -> None:
    source = RepeatedText('{"a": "', "y" * 100, 50_000, '"}\n{"id": 1}\n')
    tracemalloc.start()
    try:
        found = list(read_json_records(source, chunk_chars=4096, max_record_chars=100_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item.error is None for item in found] == [False, True]
    assert found[1].value == {"id": 1}
    assert found[1].line == 2
    assert peak < 1_000_000


def test_truncated_line_names_its_line() -> None:
    text = '{"id": "act_1"}\n{"id": "act_2", "status": "pending"\n{"id": "act_3"}\n'
    records = list(read_json_records(io.StringIO(text)))
    assert [record.line for record in records] == [1, 2, 3]
    assert records[1].error is not None
    assert "incomplete at the end of line 2" in records[1].error
    assert "line 3, column 1" not in records[1].error


def test_nul_after_record_counts_once() -> None:
    text = '{"id": "act_1"}\n{"id": "act_2"}\x00\n{"id": "act_3"}\n'
    records = list(read_json_records(io.StringIO(text)))
    assert [record.line for record in records] == [1, 2, 3]
    assert records[1].error is not None
    assert "unexpected '\\x00' after the record" in records[1].error
    assert records[2].value == {"id": "act_3"}
