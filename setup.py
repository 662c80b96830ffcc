"""Package list for setuptools; everything else is declared in pyproject.toml.

The Alembic revisions live in the top-level ``migrations/`` folder, where ``alembic.ini``
finds them in a checkout, and ship in the wheel as the package
``actortoken_store.migrations``. pyproject.toml cannot combine package discovery with that
mapping, so the packages are listed here: every package under ``actortoken_store``, found
automatically, plus the two migration packages mapped from ``migrations/``.
"""

from setuptools import find_packages, setup

MIGRATION_PACKAGES = ["actortoken_store.migrations", "actortoken_store.migrations.versions"]

setup(
    packages=find_packages(include=["actortoken_store", "actortoken_store.*"]) + MIGRATION_PACKAGES,
    package_dir={"actortoken_store.migrations": "migrations"},
)
