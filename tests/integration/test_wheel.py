"""The built wheel carries the migrations: upgrade works from a fresh venv and an empty folder.

Slow (it builds a wheel and a venv), so it runs only with ``--runslow`` or ``-m slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.config import create_engine
from tests.servers import throwaway_database

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(command: list[str], cwd: Path, **options: object) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **options,  # type: ignore[call-overload]
    )
    assert completed.returncode == 0, f"{command} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def clean_environment() -> dict[str, str]:
    # The installed copy must find everything on its own, so no setting leaks in.
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ACTORTOKEN_STORE_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    folder = tmp_path_factory.mktemp("wheel")
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(folder), "."],
        cwd=REPO_ROOT,
    )
    (built,) = folder.glob("actortoken_store-*.whl")
    return built


@pytest.fixture(scope="module")
def installed_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python of a fresh venv with the wheel installed.

    The wheel goes in without its dependencies, which the venv borrows from this one's
    site-packages through a .pth file placed after its own site-packages.
    """
    target = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--quiet",
            str(wheel),
        ],
        cwd=target,
    )
    site_packages = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=target,
    ).stdout.strip()
    borrowed = sysconfig.get_paths()["purelib"]
    Path(site_packages, "zz_borrowed_dependencies.pth").write_text(borrowed + "\n")
    return python


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.fixture
def fresh_url(admin_url: sqlalchemy.URL) -> Iterator[str]:
    with throwaway_database(admin_url) as url:
        yield url.render_as_string(hide_password=False)


def stored_version(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_wheel_contains_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())

    assert "actortoken_store/migrations/env.py" in names
    assert "actortoken_store/migrations/script.py.mako" in names
    revisions = sorted((REPO_ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert revisions
    for revision in revisions:
        assert f"actortoken_store/migrations/versions/{revision.name}" in names
    assert "actortoken_store/py.typed" in names
    assert not any(name.startswith("migrations/") for name in names)


def test_installed_copy_upgrades(
    installed_python: Path, empty_folder: Path, fresh_url: str
) -> None:
    script = (
        "import sys\n"
        "from actortoken_store import migrate\n"
        "print(migrate.__file__)\n"
        "print(migrate._script_location())\n"
        "migrate.upgrade(migrate.make_config(sys.argv[1]))\n"
    )

    completed = run([str(installed_python), "-c", script, fresh_url], cwd=empty_folder)

    module_file, script_location = completed.stdout.splitlines()[:2]
    prefix = str(installed_python.parent.parent)
    assert module_file.startswith(prefix)
    assert script_location.startswith(prefix)
    assert stored_version(fresh_url) == migrate.head()
    assert list(empty_folder.iterdir()) == []


def test_installed_cli_upgrades(installed_python: Path, empty_folder: Path, fresh_url: str) -> None:
    help_run = subprocess.run(
        [str(installed_python), "-m", "actortoken_store.cli.main", "db", "--help"],
        cwd=empty_folder,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if help_run.returncode != 0:
        pytest.skip("this version of the CLI has no 'db' command group")

    run(
        [
            str(installed_python),
            "-m",
            "actortoken_store.cli.main",
            "--database-url",
            fresh_url,
            "db",
            "upgrade",
        ],
        cwd=empty_folder,
    )

    assert stored_version(fresh_url) == migrate.head()
