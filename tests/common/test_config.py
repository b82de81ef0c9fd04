"""Configuration: defaults, then the user config, then the nearest project kernelgrade.toml;
.env loading that never overrides the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.common.config import load_config, load_dotenv_files, project_config_path


def test_project_file_is_found_walking_up_and_wins_over_the_user_config(tmp_path, monkeypatch) -> None:
    home = Path(os.environ["KERNELGRADE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[models]\nmine = "openai:gpt-user"\nboth = "openai:from-user"\n')
    repo = tmp_path / "repo"
    (repo / "a" / "b").mkdir(parents=True)
    (repo / "kernelgrade.toml").write_text('[models]\nboth = "openai:from-project"\n'
                                           '[prices."gpt-user"]\ninput = 1.0\noutput = 2.0\n')
    monkeypatch.chdir(repo / "a" / "b")
    assert project_config_path() == repo / "kernelgrade.toml"
    config = load_config()
    assert config.models["mine"] == "openai:gpt-user"          # from the user config
    assert config.models["both"] == "openai:from-project"      # the project file wins
    assert config.models["sonnet"].startswith("anthropic:")    # defaults stay
    assert config.cost_usd("gpt-user", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert str(home / "config.toml") in config.source and str(repo / "kernelgrade.toml") in config.source


def test_no_project_file_means_the_user_config_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert project_config_path() is None
    assert load_config().source is None


def test_a_broken_project_file_is_one_clear_error(tmp_path, monkeypatch) -> None:
    from harness.common.errors import UserError

    (tmp_path / "kernelgrade.toml").write_text("[models\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="kernelgrade.toml: cannot read config"):
        load_config()


def test_dotenv_fills_missing_variables_only(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("KG_TEST_NEW=from-file\nKG_TEST_SET=from-file\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.setenv("KG_TEST_SET", "from-env")
    monkeypatch.delenv("KG_TEST_NEW", raising=False)
    monkeypatch.setenv("KERNELGRADE_DOTENV", "1")
    assert load_dotenv_files() == str(tmp_path / ".env")
    assert os.environ["KG_TEST_NEW"] == "from-file" and os.environ["KG_TEST_SET"] == "from-env"
    monkeypatch.delenv("KG_TEST_NEW")
    monkeypatch.setenv("KERNELGRADE_DOTENV", "0")
    assert load_dotenv_files() is None and "KG_TEST_NEW" not in os.environ
