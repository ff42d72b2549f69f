"""Loading seeds: the example, errors that name the file and field, and a 1,000-app seed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

import grantctl.emulator as emulator
from grantctl.emulator import EXAMPLE_SEED_PATH, Seed, SeedError, create_app
from grantctl.errors import GrantctlError, ManifestError

GOOD = {
    "apps": [
        {
            "client_id": "APP1",
            "client_secret": "s3cret-value-that-must-not-leak",
            "redirect_uris": ["http://localhost:8080/callback"],
            "created_on": "2026-11-20",
        }
    ],
    "organisations": [{"tenant_id": "t-1", "name": "Acme Ltd"}],
    "users": [{"id": "u-1", "email": "a@b.example", "given_name": "A", "family_name": "B", "organisations": ["t-1"]}],
    "grants": [
        {
            "client_id": "APP1",
            "user": "u-1",
            "tenants": ["t-1"],
            "scopes": ["offline_access", "accounting.invoices"],
            "refresh_token": "seeded-token-that-must-not-leak",
        }
    ],
}


def write(tmp_path: Path, data: object, name: str = "seed.yaml") -> Path:
    path = tmp_path / name
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper), encoding="utf-8")
    return path


def variant(**changes: object) -> dict[str, object]:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return data


def test_example_seed_loads_and_serves():
    seed = Seed.from_yaml(EXAMPLE_SEED_PATH)

    assert {org.name for org in seed.organisations} >= {"Acme Ltd", "Acme Holdings", "Bluebird Bakery"}
    assert seed.default_user_id == "u-sam-lee"
    assert create_app(seed).state.emulator.grants  # the pre-seeded grant exists


def test_good_seed_loads(tmp_path):
    seed = Seed.from_yaml(write(tmp_path, GOOD))

    assert seed.apps[0].client_id == "APP1"
    assert seed.default_user_id == "u-1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"users__0__organisations": ["t-404"]}, "unknown organisations"),
        ({"grants__0__scopes": ["offline_access", "accounting.transactions"]}, "broad scope"),
        ({"grants__0__scopes": ["accounting.invoices"]}, "offline_access"),
        ({"grants__0__scopes": ["offline_access", "accounting.nonsense"]}, "unknown scope"),
        ({"grants__0__user": "u-404"}, "unknown user"),
        ({"grants__0__tenants": ["t-404"]}, "does not belong"),
        ({"apps__0__redirect_uris": ["/callback"]}, "absolute"),
        ({"apps__0__redirect_uris": ["https://*.example/callback"]}, "wildcard"),
        ({"apps__0__redirect_uris": [f"http://localhost/{n}" for n in range(51)]}, "at most 50"),
        ({"users__0__no_rights": ["t-2"]}, "does not belong"),
        ({"default_user": "u-404"}, "default_user"),
        ({"apps__0__surprise": True}, "apps.0.surprise"),
    ],
)
def test_bad_seed_names_file_and_problem(tmp_path, changes, expected):
    path = write(tmp_path, variant(**changes))

    with pytest.raises(SeedError) as caught:
        Seed.from_yaml(path)

    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "must-not-leak" not in message


def test_duplicate_ids_are_refused(tmp_path):
    data = variant()
    data["apps"].append(dict(data["apps"][0]))

    with pytest.raises(SeedError, match="duplicate id 'APP1'"):
        Seed.from_yaml(write(tmp_path, data))


def test_shared_refresh_token_is_refused_without_echoing_it(tmp_path):
    data = variant()
    data["grants"].append({**data["grants"][0], "tenants": []})

    with pytest.raises(SeedError) as caught:
        Seed.from_yaml(write(tmp_path, data))

    assert "used by an earlier grant" in str(caught.value)
    assert "must-not-leak" not in str(caught.value)


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("apps:\n  - client_id: x\n   bad: [\n", encoding="utf-8")

    with pytest.raises(SeedError) as caught:
        Seed.from_yaml(path)

    assert str(caught.value).startswith(f"{path}:3:")


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SeedError, match="cannot read"):
        Seed.from_yaml(tmp_path / "absent.yaml")
    with pytest.raises(SeedError, match="must be a mapping"):
        Seed.from_yaml(write(tmp_path, ["a", "list"]))


def test_seed_error_fits_the_grantctl_hierarchy(tmp_path):
    with pytest.raises(SeedError) as caught:
        Seed.from_yaml(tmp_path / "absent.yaml")

    assert isinstance(caught.value, ManifestError)
    assert isinstance(caught.value, GrantctlError)
    assert caught.value.location.path == tmp_path / "absent.yaml"


def test_secrets_are_hidden_in_reprs(tmp_path):
    seed = Seed.from_yaml(write(tmp_path, GOOD))

    assert "must-not-leak" not in repr(seed)
    assert "must-not-leak" not in str(seed.model_dump())


def test_a_thousand_app_seed_loads_fast(tmp_path):
    data = {"apps": [], "organisations": [], "users": [], "grants": []}
    for n in range(1_000):
        data["apps"].append(
            {
                "client_id": f"APP{n:05d}",
                "client_secret": f"secret-{n}",
                "redirect_uris": ["https://connect.agency.example/callback"],
                "created_on": "2026-11-20",
            }
        )
        data["organisations"].append({"tenant_id": f"tenant-{n:05d}", "name": f"Client {n} Ltd"})
        data["users"].append(
            {
                "id": f"user-{n:05d}",
                "email": f"owner{n}@client.example",
                "given_name": "Owner",
                "family_name": str(n),
                "organisations": [f"tenant-{n:05d}"],
            }
        )
        data["grants"].append(
            {
                "client_id": f"APP{n:05d}",
                "user": f"user-{n:05d}",
                "tenants": [f"tenant-{n:05d}"],
                "scopes": ["openid", "offline_access", "accounting.settings.read"],
                "refresh_token": f"refresh-{n:05d}",
            }
        )
    path = write(tmp_path, data)

    started = time.perf_counter()
    app = create_app(Seed.from_yaml(path))
    elapsed = time.perf_counter() - started

    assert len(app.state.emulator.grants) == 1_000
    assert elapsed < 3.0, f"loading took {elapsed:.2f} s"


def test_public_names_are_exported():
    for name in emulator.__all__:
        assert hasattr(emulator, name), name
    assert emulator.__all__ == sorted(emulator.__all__, key=lambda n: (not n.isupper(), n))
