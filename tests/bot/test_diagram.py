"""`klachtwijzer diagram`: a readable drawing of each bundled procedure, one node per step or form."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.root.cli import cli
from flows.procedure import bundled_procedures


@pytest.mark.parametrize("name", ["regioverband", "lentl", "coaching"])
def test_diagram_draws_each_bundled_procedure_readably(name: str, tmp_path: Path) -> None:
    """Each procedure is a short Mermaid flowchart (not hundreds of states) and valid Graphviz."""
    assert name in bundled_procedures()
    env = {"KLACHTWIJZER_DATA_DIR": str(tmp_path / "data")}
    steps = CliRunner().invoke(cli, ["diagram", "--procedure", name], env=env)
    assert steps.exit_code == 0, steps.output
    assert steps.output.startswith("flowchart")
    assert len(steps.output.splitlines()) < 60
    states = CliRunner().invoke(cli, ["diagram", "--procedure", name, "--format", "states"], env=env)
    assert len(states.output.splitlines()) > 2 * len(steps.output.splitlines())
    dot = CliRunner().invoke(cli, ["diagram", "--procedure", name, "--format", "dot"], env=env)
    assert dot.output.startswith("digraph")
    if shutil.which("dot"):  # .ci/run installs Debian's graphviz
        svg = subprocess.run(["dot", "-Tsvg"], input=dot.output, capture_output=True, text=True,
                             check=True).stdout
        assert "<svg" in svg


def test_diagram_refuses_an_unknown_format(tmp_path: Path) -> None:
    """A wrong --format is one line, not a traceback."""
    env = {"KLACHTWIJZER_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["diagram", "--format", "png"], env=env)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
