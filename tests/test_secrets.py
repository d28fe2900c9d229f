"""Provider credentials: never taken on argv, never printed, encrypted at rest with DIALER_SECRET_KEY."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import uid
from test_cli import as_json, dialer

from dialer import keys
from dialer.errors import InvalidRequest
from dialer.secrets import SecretBox, new_key

SID = "AC" + "0" * 32
TOKEN = "tok_9f8e7d6c5b4a"


def _twilio(account: str, env: dict[str, str] | None = None) -> Any:
    proc = dialer(
        "provider", "add", account, "tw", "--kind", "twilio", "--from", "+34911234567", "--account-sid", SID,
        "--auth-token", "-", "--api-base", "http://127.0.0.1:9", "--json", stdin=TOKEN + "\n", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    return as_json(proc)


def test_a_twilio_provider_keeps_its_token_out_of_every_answer_and_says_how_it_is_stored(store: Any) -> None:
    account = uid("sec")
    assert dialer("account", "create", account, "--json").returncode == 0
    shown = _twilio(account)
    assert shown["credentials"] == "plain text" and shown["account_sid"] == SID
    assert TOKEN not in dialer("provider", "show", account, "tw", "--json").stdout
    key = new_key()
    shown = _twilio(account, env={"DIALER_SECRET_KEY": key})
    assert shown["credentials"] == "encrypted"
    doc = store.r.hget(keys.provider(account, "tw"), "doc")
    assert TOKEN not in doc and "fernet:" in doc
    assert SecretBox(key).open(store.get_provider(account, "tw").auth_token) == TOKEN
    with pytest.raises(InvalidRequest, match="DIALER_SECRET_KEY"):  # without the key they cannot be opened
        SecretBox(None).open(store.get_provider(account, "tw").auth_token)
    assert dialer("provider", "show", account, "tw", "--json").returncode == 0  # reading needs no key
    proc = dialer("provider", "test", account, "tw", "--json", env={"DIALER_SECRET_KEY": new_key()})
    assert proc.returncode == 1 and "another DIALER_SECRET_KEY" in as_json(proc)["error"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--account-sid", "nope", "--auth-token-env", "TW_TOKEN"], "account_sid"),
        (["--account-sid", SID], "auth_token"),
        (["--account-sid", SID, "--auth-token", "on-the-command-line"], "--auth-token"),
        (["--account-sid", SID, "--auth-token-env", "TW_TOKEN", "--api-base", "ftp://x"], "api_base"),
        (
            ["--account-sid", SID, "--auth-token-env", "TW_TOKEN", "--api-base", "http://exa mple.com"],
            "api_base",
        ),
        (["--account-sid", SID, "--auth-token-env", "TW_TOKEN", "--auth-token", "-"], "--auth-token"),
        (["--account-sid", SID, "--auth-token-env", "TW_BLANK"], "auth_token"),
        (["--account-sid", SID, "--auth-token-env", "TW_TOKEN", "--sim", "ring_s=1"], "sim"),
        (["--kind", "simulator", "--account-sid", SID, "--auth-token-env", "TW_TOKEN"], "account_sid"),
    ],
)
def test_a_twilio_provider_needs_valid_credentials(args: list[str], field: str) -> None:
    account = uid("sec")
    assert dialer("account", "create", account, "--json").returncode == 0
    proc = dialer(
        "provider", "add", account, "tw", "--kind", "twilio", "--from", "+34911234567", *args, "--json",
        env={"TW_TOKEN": TOKEN, "TW_BLANK": "   "},
    )  # fmt: skip
    assert proc.returncode == 1 and field in as_json(proc)["error"]
    assert "on-the-command-line" not in proc.stdout + proc.stderr or field == "--auth-token"
