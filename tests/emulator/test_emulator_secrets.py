"""Secrets (client secrets, codes, tokens) never reach logs, pages, error bodies, state or reprs."""

from __future__ import annotations

import logging

from grantctl.emulator import Seed
from grantctl.emulator._core import Emulator


def test_no_secret_in_logs_pages_or_state(flow, world, caplog):
    caplog.set_level(logging.DEBUG)
    page = flow.authorize()
    code = flow.redirect_params(flow.submit_consent(page, tenants=[world.acme]))["code"]
    tokens = flow.exchange(code).json()
    rotated = flow.refresh(tokens["refresh_token"]).json()
    failures = [
        flow.exchange(code),  # reuse
        flow.exchange("made-up-code", secret="wrong-secret"),
        flow.refresh(tokens["refresh_token"] + "x"),
        flow.connections(tokens["access_token"] + "x"),
    ]
    flow.client.post(
        "/connect/revocation", data={"token": rotated["refresh_token"]}, auth=(world.new_app, world.new_secret)
    )
    state = flow.client.get("/_emulator/state").text

    secrets = {
        "client secret": world.new_secret,
        "code": code,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "id token": tokens["id_token"],
        "rotated refresh token": rotated["refresh_token"],
        "seeded refresh token": world.seeded_refresh_token,
        "wrong secret": "wrong-secret",
    }
    # Only the server side: the test's own HTTP client logs the redirects it receives.
    server_log = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith(("grantctl", "uvicorn"))
    )
    assert "tokens issued" in server_log  # the emulator does log, and the log is captured
    for what, value in secrets.items():
        assert value not in server_log, f"{what} in the log"
        assert value not in state, f"{what} in /_emulator/state"
        assert value not in page.text, f"{what} on the consent page"
        for response in failures:
            assert value not in response.text, f"{what} in an error response"


def test_token_sets_and_records_do_not_print_tokens(make_seed, world):
    now = [1_800_000_000.0]
    core = Emulator(make_seed(), lambda: now[0])
    app = core.apps[world.seeded_app]

    tokens = core.refresh(app, world.seeded_refresh_token, "http://emulator")

    assert tokens.refresh_token is not None
    for printed in (repr(tokens), repr(core.grants), repr(core.describe())):
        assert tokens.access_token not in printed
        assert tokens.refresh_token not in printed
        assert world.seeded_refresh_token not in printed


def test_seed_repr_hides_client_secrets(make_seed, world):
    seed: Seed = make_seed()

    assert world.new_secret not in repr(seed)
    assert world.seeded_refresh_token not in repr(seed)
