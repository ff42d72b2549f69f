"""Connection names become file names: a name with a trailing newline is not a slug either.

``re.match`` with a ``$``-anchored pattern accepts ``"acme-ltd\\n"`` (``$`` also matches before a final
newline), which would put ``state/acme-ltd\\n.yaml`` and ``state/.locks/acme-ltd\\n.lock`` on disk next
to the real ones: two lock files, so two writers for what a person reads as one connection.
"""

from __future__ import annotations

import pytest

from grantctl.errors import StateError
from grantctl.repo import Repo
from grantctl.state.files import FilesStore


@pytest.mark.parametrize("name", ["acme-ltd\n", "acme-ltd\n\n", "\nacme-ltd"])
def test_a_name_with_a_newline_is_refused_before_it_reaches_the_disk(repo: Repo, name: str) -> None:
    store = FilesStore(repo)
    with pytest.raises(StateError, match="not a connection name"):
        store.path(name)
    with pytest.raises(StateError, match="not a connection name"), store.lock(name, timeout=0.1):
        pass
    assert not (repo.state_dir / ".locks").exists()
    assert list(repo.state_dir.iterdir()) == []


def test_a_state_file_named_with_a_newline_is_not_listed(repo: Repo) -> None:
    (repo.state_dir / "acme-ltd\n.yaml").write_text("kind: State\n")
    assert FilesStore(repo).names() == []
