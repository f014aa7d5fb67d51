"""Reading settings: each value as its setting's type, or an error naming the setting, its source and the value."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from certsmith.settings import load_settings


@pytest.fixture(autouse=True)
def _no_ambient(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("CERTSMITH_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("TRUE", True), ("1", True), ("Yes", True), ("on", True),
                                             ("false", False), ("False", False), ("0", False), ("no", False),
                                             (" OFF ", False)])
def test_booleans_in_the_usual_words(monkeypatch: pytest.MonkeyPatch, text: str, value: bool) -> None:
    monkeypatch.setenv("CERTSMITH_EVENT_COMMANDS", text)
    assert load_settings(None).event_commands is value


@pytest.mark.parametrize("text", ["maybe", "", "2", "enabled", "y"])
def test_any_other_boolean_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("CERTSMITH_EVENT_COMMANDS", text)
    with pytest.raises(ValueError) as caught:
        load_settings(None)
    assert str(caught.value) == (f"setting event_commands must be true or false (or 1/0, yes/no, on/off), not {text!r} "
                                 "(from CERTSMITH_EVENT_COMMANDS)")


def test_toml_values_have_their_settings_types(tmp_path: Path) -> None:
    config = tmp_path / "certsmith.toml"
    config.write_text('[certsmith]\nworker = false\nport = 9000.0\nrenewal-sweep-seconds = 5\naccess_log = "yes"\n')
    settings = load_settings(config)
    assert (settings.worker, settings.port, settings.renewal_sweep_seconds, settings.access_log) == (False, 9000, 5.0, True)
    for line, message in [("worker = 1", "setting worker must be true or false (or 1/0, yes/no, on/off), not 1"),
                          ('worker = "maybe"', "setting worker must be true or false"),
                          ("port = 80.5", "setting port must be a whole number, not 80.5"),
                          ("port = true", "setting port must be a whole number, not True"),
                          ('port = "eighty"', "setting port must be a whole number, not 'eighty'"),
                          ("renewal-sweep-seconds = nan", "setting renewal_sweep_seconds must be a number, not nan"),
                          ("renewal-sweep-seconds = false", "setting renewal_sweep_seconds must be a number"),
                          ("data-dir = 5", "setting data_dir must be a path, not 5")]:
        config.write_text(f"[certsmith]\n{line}\n")
        with pytest.raises(ValueError) as caught:
            load_settings(config)
        assert str(caught.value).startswith(message) and str(caught.value).endswith(f"(from {config})"), caught.value


def test_a_bad_settings_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "certsmith.toml"
    config.write_text("[certsmith]\nport = \n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: not a valid TOML file: "):
        load_settings(config)
    config.write_bytes(b"port = '\xff'\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: not a valid TOML file"):
        load_settings(config)
    config.write_text("certsmith = 5\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: 'certsmith' must be a table"):
        load_settings(config)
    missing = re.escape(str(tmp_path / "none.toml"))
    monkeypatch.setenv("CERTSMITH_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ValueError, match=rf"^{missing}: cannot read the settings file \(No such file"):
        load_settings(None)


def test_environment_numbers_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTSMITH_PORT", "eighty")
    with pytest.raises(ValueError, match=r"^setting port must be a whole number, not 'eighty' \(from CERTSMITH_PORT\)$"):
        load_settings(None)
    monkeypatch.setenv("CERTSMITH_PORT", " 8443 ")
    monkeypatch.setenv("CERTSMITH_RENEWAL_SWEEP_SECONDS", "inf")
    with pytest.raises(ValueError, match="setting renewal_sweep_seconds must be a number, not 'inf'"):
        load_settings(None)
    monkeypatch.delenv("CERTSMITH_RENEWAL_SWEEP_SECONDS")
    assert load_settings(None).port == 8443
    assert load_settings(None, port=9000, worker=False).port == 9000  # flags come typed, and win
