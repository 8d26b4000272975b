"""Every setting is declared once (uploader.config.SHARED_OPTIONS, or a target's own ``options``).

What a user checks: a target's setting given by flag, config file,
environment or Python keyword arrives the same, checked the same, and the
commands offer the flags of the targets they send to, and only those.
"""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from uploader.cli import main as cli
from uploader.config import (
    OPTIONS,
    PYTHON_OPTIONS,
    SERVER_SETTINGS,
    SHARED_OPTIONS,
    TARGET_OPTIONS,
    Settings,
    resolve,
)
from uploader.errors import UsageError
from uploader.targets import TARGETS


def test_every_settings_field_is_declared_once_and_target_options_are_not_fields():
    names = [option.name for option in SHARED_OPTIONS]
    assert len(names) == len(set(names))
    assert set(names) == {f.name for f in dataclasses.fields(Settings)}
    assert set(TARGET_OPTIONS) == {"organization_type", "organization_id", "account_id", "auth_url"}
    assert not set(TARGET_OPTIONS) & set(names)  # a target's setting lives with its target
    # what each front end takes comes from the declarations
    assert {"organization_id", "account_id", "concurrency"} <= PYTHON_OPTIONS and "token" not in PYTHON_OPTIONS
    assert {"organization_id", "account_id", "base_url"} <= set(SERVER_SETTINGS) and "timezone" not in SERVER_SETTINGS
    for target in TARGETS.values():
        for option in target.options:
            assert OPTIONS[option.name] is option or OPTIONS[option.name] == option


@pytest.mark.parametrize("given", ["flag", "config", "env", "python"])
def test_a_targets_setting_arrives_the_same_from_everywhere(tmp_path, given):
    config = tmp_path / "uploader.toml"
    config.write_text("account_id = 12440011\norganization_type = 'advertiser'\n", encoding="utf-8")
    values = {"account_id": " 12440011 ", "organization_type": "ADVERTISER"}
    environ = {}
    if given == "flag":
        settings = resolve({"api": "engage_hangup", **values}, environ=environ)
    elif given == "config":
        settings = resolve({"api": "engage_hangup"}, environ=environ, config_file=config)
    elif given == "env":
        environ = {option.env_name: values[name] for name, option in TARGET_OPTIONS.items() if name in values}
        settings = resolve({"api": "engage_hangup"}, environ=environ)
    else:
        from uploader.api import _settings

        settings = _settings(
            api="engage_hangup",
            timezone=None,
            base_url=None,
            mapping=None,
            state_dir=None,
            config=None,
            options=values,
            token_file=None,
            need_token=False,
        )
    assert settings.option("account_id") == "12440011"
    assert settings.option("organization_type") == "Advertiser"  # spelled as the API documents it
    assert settings.target.account == "12440011"


def test_a_wrong_value_is_named_by_its_flag_wherever_it_came_from():
    with pytest.raises(UsageError, match=r"--account-id '12-44' is not a number"):
        resolve({"api": "engage_hangup"}, environ={"SIGNAL_UPLOADER_ACCOUNT_ID": "12-44"})
    with pytest.raises(UsageError, match="is not Network or Advertiser"):
        resolve({"organization_type": "Agency"}, environ={})
    with pytest.raises(KeyError):
        Settings().option("no_such_option")  # a typo in the code fails loudly, not as None


def test_each_command_offers_the_flags_of_the_targets_it_sends_to():
    def flags(*command: str) -> str:
        result = CliRunner().invoke(cli, [*command, "--help"])
        assert result.exit_code == 0, result.output
        return result.output

    upload = flags("upload")
    assert "--organization-type" in upload and "--organization-id" in upload and "--account-id" in upload
    assert "SIGNAL_UPLOADER_ACCOUNT_ID" in upload  # the help says where else it may come from
    calls = flags("calls")
    assert "--organization-id" in calls and "--account-id" not in calls
    engage = flags("engage", "calls")
    assert "--account-id" in engage and "--organization-id" not in engage
    assert "--auth-url" not in upload  # declared without a flag: config file or environment only


def test_the_page_forwards_a_targets_setting_over_the_servers(tmp_path):
    from uploader.web.workspace import Workspace

    server = resolve({"api": "calls_in_progress", "organization_type": "Network", "organization_id": "1"}, environ={})
    workspace = Workspace(server, root=tmp_path / "web", environ={})
    chosen = workspace.settings_for({"api": "calls_in_progress", "organization_id": "55"})
    assert chosen.option("organization_id") == "55" and chosen.option("organization_type") == "Network"
    assert workspace.settings_for({"api": "calls_in_progress"}).option("organization_id") == "1"
    with pytest.raises(UsageError, match="--organization-id 'x' is not a number"):
        workspace.settings_for({"api": "calls_in_progress", "organization_id": "x"})
