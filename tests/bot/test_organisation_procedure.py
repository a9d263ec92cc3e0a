"""The organisation config names its procedure: a bundled one by name, or a file beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services.organisation import load_organisation
from flows.procedure import ProcedureError, bundled_procedures


def test_a_bundled_procedure_is_chosen_by_name(tmp_path: Path) -> None:
    """`procedure = "lentl"` loads Lentl's procedure (002) that ships with Klachtwijzer."""
    config = tmp_path / "org.toml"
    config.write_text('name = "Lentl"\nprocedure = "lentl"\n', encoding="utf-8")
    organisation = load_organisation(config)
    assert organisation.procedure.id == "lentl"
    assert bundled_procedures()["lentl"].name == "lentl.toml"


def test_a_procedure_file_beside_the_config_still_works(tmp_path: Path) -> None:
    """A path is read relative to the config's folder, as before."""
    (tmp_path / "mine.toml").write_text(bundled_procedures()["coaching"].read_text("utf-8"), "utf-8")
    config = tmp_path / "org.toml"
    config.write_text('procedure = "mine.toml"\n', encoding="utf-8")
    assert load_organisation(config).procedure.id == "coaching"


def test_an_unknown_procedure_is_a_clear_error(tmp_path: Path) -> None:
    """A name that is neither bundled nor a file says which file it looked for."""
    config = tmp_path / "org.toml"
    config.write_text('procedure = "nope"\n', encoding="utf-8")
    with pytest.raises(ProcedureError, match="nope"):
        load_organisation(config)
