"""Every example notebook runs headlessly (nbclient) against a live demo stack, without error.

The kernel gets only TRE_API_URL and a project token, as a JupyterHub server would; any cell
that raises fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.e2e.stack import REPO, Stack, running_stack

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("nbdemo")) as s:
        yield s


def test_there_are_example_notebooks() -> None:
    assert [p.name[0] for p in NOTEBOOKS] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_error(
    path: Path, stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("TRE_"):
            monkeypatch.delenv(name)  # the kernel knows nothing of the server's settings
    monkeypatch.setenv("TRE_API_URL", stack.api_url)
    monkeypatch.setenv("TRE_TOKEN", stack.token("ada"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "each example draws at least one figure with error bars"
