"""The throwaway PostgreSQL server of the tests (tests/pg.py): found where Debian puts it, loud when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pg


def test_missing_binaries_are_an_error_that_says_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    with pytest.raises(pg.PostgresUnavailableError, match=r"initdb, pg_ctl.*apt-get install postgresql"):
        pg.find_bindir()


def test_binaries_off_path_are_found_in_the_newest_debian_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for version in ("9.6", "13", "15"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        if version != "15":  # an incomplete newest version would be skipped
            for name in ("initdb", "pg_ctl", "postgres"):
                (bindir / name).touch()
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [str(tmp_path / v / "bin") for v in ("9.6", "13", "15")])
    assert pg.find_bindir() == tmp_path / "13" / "bin"


def test_the_session_server_takes_databases(postgres: pg.PostgresServer) -> None:
    name = postgres.create_database()
    assert postgres.psql("SELECT current_database()", name).strip() == name
    postgres.drop_database(name)
    assert name not in postgres.psql("SELECT datname FROM pg_database")
