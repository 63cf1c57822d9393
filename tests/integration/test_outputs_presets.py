"""An unknown or broken disclosure preset is refused naming the preset and the available ones,
never the server's folders (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.test_outputs_workflow import NOW, Cast, cast, refusals  # noqa: F401
from tre.config import Settings
from tre.db import Database
from tre.disclosure.policy import PRESET_DIR
from tre.errors import InvalidInput, NotFound
from tre.outputs import OutputService

pytest_plugins = ("tests.governance_fixtures",)


def server_paths(settings: Settings) -> list[str]:
    return [str(settings.data_root), str(settings.policy_dir), str(PRESET_DIR), "/work", ".yaml"]


def test_an_unknown_preset_names_the_preset_and_the_choices_not_the_folder(
    db: Database,
    settings: Settings,
    cast: Cast,  # noqa: F811
) -> None:
    svc = OutputService(db, settings)
    with pytest.raises(NotFound) as err:
        svc.create_request(cast.alice, cast.project.id, title="T", preset="nope", now=NOW)
    body = str(err.value.body())
    assert "'nope'" in err.value.message
    assert "acro" in err.value.message and "opensafely" in err.value.message
    for path in server_paths(settings):
        assert path not in body, path
    [event] = refusals(db)
    assert event["reason"] == err.value.reason
    for path in server_paths(settings):
        assert path not in str(event), path


def test_a_broken_preset_file_is_named_by_its_preset_not_its_path(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    cast: Cast,  # noqa: F811
) -> None:
    policies = tmp_path / "server-policies"
    shutil.copytree(settings.policy_dir, policies)
    (policies / "disclosure" / "broken.yaml").write_text("threshold: [unclosed\n")
    (policies / "disclosure" / "wrong.yaml").write_text("threshold: many\n")
    settings = settings.model_copy(update={"policy_dir": policies})
    svc = OutputService(db, settings)
    for preset, message in [("broken", "is not valid YAML"), ("wrong", "key ")]:
        with pytest.raises(InvalidInput, match=message) as err:
            svc.create_request(cast.alice, cast.project.id, title="T", preset=preset, now=NOW)
        assert f"preset '{preset}'" in err.value.message
        for path in [*server_paths(settings), str(policies)]:
            assert path not in str(err.value.body()), path
