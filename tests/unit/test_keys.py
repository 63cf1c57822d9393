"""Custodian keys: 32 random bytes, file 0600 in a 0700 folder, never overwritten, never shown,
never inside the data root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tre.catalog.keys import KEY_BYTES, KeyStore, derive_key, fingerprint
from tre.cli import app
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_32_random_bytes_with_private_modes(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", tmp_path / "data")
    info = store.create("spine")
    assert _mode(info.path) == 0o600
    assert _mode(tmp_path / "keys") == 0o700
    key = store.load("spine")
    assert len(key) == KEY_BYTES
    assert info.fingerprint == fingerprint(key)
    assert key.hex() not in info.fingerprint
    other = store.create("other")
    assert store.load("other") != key
    assert other.fingerprint != info.fingerprint


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", tmp_path / "data")
    store.create("spine")
    before = store.load("spine")
    with pytest.raises(Conflict) as info:
        store.create("spine")
    assert "already exists" in info.value.message
    assert store.load("spine") == before


@pytest.mark.parametrize("inside", ["data/keys", "data", "."])
def test_key_dir_inside_the_data_root_is_refused(tmp_path: Path, inside: str) -> None:
    store = KeyStore(tmp_path / inside, tmp_path / "data")
    with pytest.raises(Forbidden) as info:
        store.create("spine")
    assert "data root" in info.value.message
    assert not (tmp_path / inside / "spine.key").exists()


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", tmp_path / "data")
    info = store.create("spine")
    os.chmod(info.path, 0o644)
    with pytest.raises(Forbidden) as err:
        store.load("spine")
    assert "chmod 600" in (err.value.hint or "")


def test_missing_and_malformed_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", tmp_path / "data")
    with pytest.raises(NotFound) as err:
        store.load("spine")
    assert "tre keys create spine" in (err.value.hint or "")
    store.create("spine")
    (tmp_path / "keys" / "spine.key").write_text("not hex")
    with pytest.raises(InvalidInput):
        store.load("spine")
    with pytest.raises(InvalidInput):
        store.create("../escape")


def test_derived_keys_differ_from_the_key_and_by_purpose() -> None:
    key = bytes(range(32))
    a, b = derive_key(key, "row rank order"), derive_key(key, "something else")
    assert a != key and b != key and a != b
    assert derive_key(key, "row rank order") == a


def test_cli_create_and_list_show_fingerprints_never_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TRE_KEY_DIR", str(tmp_path / "keys"))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "spine"])
    assert created.exit_code == 0, created.output
    key = KeyStore(tmp_path / "keys").load("spine")
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0
    assert "spine" in listed.output and fingerprint(key) in listed.output
    for output in (created.output, listed.output):
        assert key.hex() not in output.replace("\n", "")
    again = runner.invoke(app, ["keys", "create", "spine"])
    assert isinstance(again.exception, Conflict)
