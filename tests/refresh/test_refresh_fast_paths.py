"""Per-connection shortcuts of refresh and health give the reference results."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from grantctl.errors import ManifestError
from grantctl.maintenance._context import load_manifest, open_run
from grantctl.maintenance._credentials import CredentialsCache
from grantctl.manifest import load_connection_fast
from grantctl.providers import ClientCredentials
from grantctl.state.files import FilesStore


def test_manifests_read_as_the_reference_reader_reads_them(fleet: Any) -> None:
    f = fleet(1)
    path = f.repo.manifest_path(f.names[0])
    assert load_manifest(path) == load_connection_fast(path)
    text = path.read_text()
    variants = {
        "comments": "# owned by the platform team\n" + text,
        "non-ascii": text.replace("Pat Client", "Zoë Client"),
        "quoted": text.replace("provider: xero", 'provider: "xero"'),
    }
    for label, variant in variants.items():
        path.write_text(variant)
        assert load_manifest(path) == load_connection_fast(path), label


@pytest.mark.parametrize(
    "change",
    [
        ("provider: xero", "provider: nope"),  # a model error
        ("name: conn-000\n", "name: someone-else\n"),  # the wrong name
        ("scopes:", "scopes: [unclosed"),  # a YAML error
    ],
)
def test_a_broken_manifest_fails_with_the_reference_message(fleet: Any, change: tuple[str, str]) -> None:
    f = fleet(1)
    path = f.repo.manifest_path(f.names[0])
    path.write_text(path.read_text().replace(*change, 1))
    with pytest.raises(ManifestError) as reference:
        load_connection_fast(path)
    with pytest.raises(ManifestError) as fast:
        load_manifest(path)
    assert str(fast.value) == str(reference.value)


def test_credentials_read_in_the_calling_task_are_read_once(tmp_path: Path) -> None:
    calls: list[Path] = []

    def reader(path: Path) -> ClientCredentials:
        calls.append(path)
        if path.name.startswith("bad"):
            raise ValueError("cannot decrypt (simulated)")
        return ClientCredentials("id", "secret")

    async def run_here(func: Any, *args: Any) -> Any:  # as RunContext.local does with the files store
        return func(*args)

    async def main() -> None:
        cache = CredentialsCache(run_here, reader)
        first = await cache.get(tmp_path / "a.secrets.yaml")
        assert await cache.get(tmp_path / "a.secrets.yaml") is first
        for _ in range(2):
            with pytest.raises(ValueError, match="simulated"):
                await cache.get(tmp_path / "bad.secrets.yaml")  # a failure is remembered too

    asyncio.run(main())
    assert [path.name for path in calls] == ["a.secrets.yaml", "bad.secrets.yaml"]


def test_two_tasks_of_one_run_take_turns_on_a_connection_lock(fleet: Any) -> None:
    f = fleet(1)
    (name,) = f.names
    order: list[str] = []

    async def main() -> None:
        async with open_run(f.repo, FilesStore(f.repo), concurrency=2) as ctx:

            async def hold(tag: str) -> None:
                async with ctx.locked(name, lambda: tag) as value:
                    order.append(f"{value} in")
                    await asyncio.sleep(0.05)
                    order.append(f"{value} out")

            await asyncio.gather(hold("a"), hold("b"))

    asyncio.run(main())
    assert order == ["a in", "a out", "b in", "b out"]
