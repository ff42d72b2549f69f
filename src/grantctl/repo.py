"""Where things are in a connections repo. All paths come from here so tests can point anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grantctl.errors import GrantctlError
from grantctl.manifest import MANIFEST_SUFFIX, SECRETS_SUFFIX, load_config, manifest_paths
from grantctl.models import Config, Connection

CONFIG_FILE = "grantctl.yaml"
SOPS_CONFIG_FILE = ".sops.yaml"
CONNECTIONS_DIR = "connections"

# The bundled example-* connections are encrypted to this key; its private half is committed in
# examples/demo-age-key.txt. `validate` refuses it for anything that is not an example.
DEMO_RECIPIENT = "age1kuyn930fq92p0msgscw8jcrh9wssrr85hg2v0tq5pngfs2ategms50ql2r"
EXAMPLE_PREFIX = "example-"


@dataclass(frozen=True)
class Repo:
    """A connections repo: the directory holding ``grantctl.yaml``."""

    root: Path
    config: Config

    @classmethod
    def load(cls, root: Path) -> Repo:
        return cls(root=root, config=load_config(root / CONFIG_FILE))

    @property
    def connections_dir(self) -> Path:
        return self.root / CONNECTIONS_DIR

    @property
    def sops_config(self) -> Path:
        return self.root / SOPS_CONFIG_FILE

    @property
    def state_dir(self) -> Path:
        path = getattr(self.config.state, "path", "state")
        return self.root / path

    def manifest_path(self, name: str) -> Path:
        return self.connections_dir / f"{name}{MANIFEST_SUFFIX}"

    def credentials_path(self, connection: Connection) -> Path:
        return self.connections_dir / connection.spec.app.credentials

    def manifest_paths(self) -> list[Path]:
        return manifest_paths(self.connections_dir)

    def relative(self, path: Path) -> Path:
        """``path`` relative to the repo root when it is inside it (for messages and annotations)."""
        try:
            return path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return path


def find_repo(start: Path | None = None) -> Repo:
    """The repo containing ``start`` (default: the working directory), searching parent directories."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return Repo.load(candidate)
    raise GrantctlError(f"no {CONFIG_FILE} in {here} or any parent directory: run `grantctl init` or pass --repo")


def is_example(name: str) -> bool:
    return name.startswith(EXAMPLE_PREFIX)


__all__ = ["DEMO_RECIPIENT", "SECRETS_SUFFIX", "Repo", "find_repo", "is_example"]
