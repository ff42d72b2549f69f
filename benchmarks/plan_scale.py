"""How long does ``grantctl plan`` take over N connections, next to the floor of just parsing the files?

Generates a connections repo in a temp directory with N manifests and their state files (a realistic
mix of matching, missing-scope, excess-scope, wrong-organisation, stale, never-connected and orphaned
grants; state files carry an encrypted-looking ``tokens:`` block and a ``sops:`` block like sops writes),
then times, as whole processes, round-robin (plan and floor, every size, every round) so all of them
see the same machine load:

- ``plan``:  ``<venv python> -m grantctl plan --repo DIR`` (interpreter start included);
- ``floor``: a bare ``python -c`` that only parses the same YAML files with PyYAML's CSafeLoader.

Targets (2-core machine): N=1,000 in <= 1.0 s and <= 2.0x the floor; N=10,000 within 10x of N=1,000.

    python benchmarks/plan_scale.py                  # N=1,000 and N=10,000, 5 runs each
    python benchmarks/plan_scale.py --n 1000 --runs 9
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime.now(UTC).replace(microsecond=0)
DESIRED = ["openid", "email", "profile", "offline_access", "accounting.invoices", "accounting.contacts",
           "accounting.settings.read", "accounting.payments.read"]  # fmt: skip
EXTRA = ["accounting.manualjournals", "payroll.employees", "files", "accounting.attachments"]

FLOOR = (
    "import sys, pathlib, yaml\n"
    "root = pathlib.Path(sys.argv[1])\n"
    "for folder in ('connections', 'state'):\n"
    "    for path in sorted((root / folder).glob('*.yaml')):\n"
    "        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)\n"
)
RUN_PLAN = (
    "import sys; from pathlib import Path\n"
    "from grantctl.repo import Repo\n"
    "from grantctl.commands.plan import run_plan\n"
    "outcome = run_plan(Repo.load(Path(sys.argv[1])), fmt='text')\n"
    "sys.stdout.write(outcome.output)\n"
)


# --- the generated repo ----------------------------------------------------------------------------


def _enc(rng: random.Random, size: int) -> str:
    """A value shaped like sops' AES256_GCM output (random bytes: nothing here is a real token)."""
    data = base64.b64encode(rng.randbytes(size)).decode()
    iv = base64.b64encode(rng.randbytes(32)).decode()
    tag = base64.b64encode(rng.randbytes(16)).decode()
    return f"ENC[AES256_GCM,data:{data},iv:{iv},tag:{tag},type:str]"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_text(name: str, organization: str, scopes: list[str], tenant_id: str | None) -> str:
    pinned = f"    tenantId: {tenant_id}\n" if tenant_id else ""
    scope_lines = "".join(f"    - {scope}\n" for scope in scopes)
    return (
        "apiVersion: grantctl/v1\nkind: Connection\nmetadata:\n"
        f"  name: {name}\n  owner: jane@agency.example\n  labels:\n    team: integrations\n"
        f"spec:\n  provider: xero\n  organization:\n    name: {organization}\n{pinned}"
        f"  contact:\n    name: Sam Lee\n    email: sam@{name}.example\n"
        f"  app:\n    credentials: {name}.secrets.yaml\n    createdOn: 2026-11-20\n"
        f"  scopes:\n{scope_lines}"
    )


def state_text(rng: random.Random, name: str, tenant: tuple[str, str], scopes: list[str], issued_days_ago: int) -> str:
    issued = NOW - timedelta(days=issued_days_ago, hours=rng.randint(0, 20))
    authorized = issued - timedelta(days=rng.randint(0, 300))
    scope_lines = "".join(f"    - {scope}\n" for scope in scopes)
    age_block = "".join(f"            {base64.b64encode(rng.randbytes(48)).decode()}\n" for _ in range(5))
    return (
        f"apiVersion: grantctl/v1\nkind: State\nconnection: {name}\nprovider: xero\n"
        f"tenant:\n    id: {tenant[0]}\n    name: {tenant[1]}\n    type: ORGANISATION\n"
        f"granted_scopes:\n{scope_lines}"
        f"authorized_by:\n    user_id: '{rng.getrandbits(64):016x}'\n    email: sam@{name}.example\n    name: Sam Lee\n"
        f"authorized_at: '{_iso(authorized)}'\nauth_event_id: '{rng.getrandbits(128):032x}'\n"
        f"refreshed_at: '{_iso(issued)}'\naccess_token_expires_at: '{_iso(issued + timedelta(minutes=30))}'\n"
        f"refresh_token_issued_at: '{_iso(issued)}'\n"
        f"last_health:\n    status: healthy\n    at: '{_iso(issued)}'\n    detail: Organisation answered 200\n"
        "consecutive_failures: 0\n"
        f"links:\n    - issued_at: '{_iso(authorized - timedelta(days=1))}'\n      action: connect\n"
        f"      scopes:\n{''.join(f'        - {scope}{chr(10)}' for scope in scopes)}"
        f"      expires_at: '{_iso(authorized + timedelta(days=6))}'\n      commit: '{rng.getrandbits(160):040x}'\n"
        "tokens:\n"
        f"    access_token: {_enc(rng, 1100)}\n    refresh_token: {_enc(rng, 48)}\n    id_token: {_enc(rng, 800)}\n"
        "sops:\n    age:\n        - recipient: age1kuyn930fq92p0msgscw8jcrh9wssrr85hg2v0tq5pngfs2ategms50ql2r\n"
        "          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n"
        f"{age_block}            -----END AGE ENCRYPTED FILE-----\n"
        f"    lastmodified: '{_iso(issued)}'\n    mac: {_enc(rng, 32)}\n"
        "    encrypted_regex: ^(access_token|refresh_token|id_token)$\n    mac_only_encrypted: true\n"
        "    version: 3.11.3\n"
    )


# Share of connections per situation; whatever is left matches its grant exactly.
MIX = {"missing": 0.10, "excess": 0.06, "wrong-org": 0.04, "stale": 0.06, "expired": 0.02, "new": 0.05,
       "unpinned": 0.05, "orphan": 0.03}  # fmt: skip


def generate(root: Path, n: int, seed: int = 7) -> dict[str, int]:
    """Write a connections repo with ``n`` manifests into ``root``; returns how many of each situation."""
    rng = random.Random(seed)
    (root / "connections").mkdir(parents=True)
    (root / "state").mkdir()
    (root / "grantctl.yaml").write_text(
        "apiVersion: grantctl/v1\nkind: Config\npublicUrl: https://connect.agency.example\n"
    )
    tally: dict[str, int] = {}
    for index in range(n):
        situation = _pick(rng)
        tally[situation] = tally.get(situation, 0) + 1
        _write_connection(root, rng, f"client-{index:05d}", situation)
    return tally


def _pick(rng: random.Random) -> str:
    roll = rng.random()
    for situation, share in MIX.items():
        if roll < share:
            return situation
        roll -= share
    return "match"


def _write_connection(root: Path, rng: random.Random, name: str, situation: str) -> None:
    organization = f"Client {name.split('-')[1]} Ltd"
    tenant_id = _uuid(rng)
    desired = list(DESIRED)
    granted = list(DESIRED)
    tenant = (tenant_id, organization)
    days = rng.randint(0, 40)
    if situation == "missing":
        granted.remove("accounting.contacts")
    elif situation == "excess":
        granted.append(rng.choice(EXTRA))
    elif situation == "wrong-org":
        tenant = (_uuid(rng), "Someone Else Ltd")
    elif situation == "stale":
        days = rng.randint(46, 58)
    elif situation == "expired":
        days = rng.randint(61, 90)
    pinned = None if situation == "unpinned" else tenant_id
    if situation != "orphan":
        manifest = manifest_text(name, organization, desired, pinned)
        (root / "connections" / f"{name}.yaml").write_text(manifest)
    if situation != "new":
        (root / "state" / f"{name}.yaml").write_text(state_text(rng, name, tenant, granted, days))


# --- timing ------------------------------------------------------------------------------------------


@dataclass
class Figures:
    n: int
    plan: float
    floor: float

    @property
    def ratio(self) -> float:
        return self.plan / self.floor


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed


def plan_command(python: str, repo: Path) -> list[str]:
    """``python -m grantctl plan`` when the CLI has the command, else the same call through run_plan."""
    probe = subprocess.run([python, "-m", "grantctl", "plan", "--help"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [python, "-m", "grantctl", "plan", "--repo", str(repo)]
    return [python, "-c", RUN_PLAN, str(repo)]


def measure(sizes: list[int], runs: int, python: str) -> list[Figures]:
    """Median wall time of plan and floor per size; every round times every size, so all see the same load."""
    with tempfile.TemporaryDirectory(prefix="plan-scale-") as temp:
        commands = {}
        for n in sizes:
            repo = Path(temp) / f"repo-{n}"
            tally = generate(repo, n)
            print(f"N={n}: {', '.join(f'{k} {v}' for k, v in sorted(tally.items()))}", flush=True)
            commands[n] = (plan_command(python, repo), [python, "-c", FLOOR, str(repo)])
        for plan_argv, floor_argv in commands.values():
            _time(plan_argv), _time(floor_argv)  # warm the page cache and .pyc files
        times: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in sizes}
        for _ in range(runs):
            for n, (plan_argv, floor_argv) in commands.items():
                times[n][0].append(_time(plan_argv))
                times[n][1].append(_time(floor_argv))
        return [Figures(n, statistics.median(times[n][0]), statistics.median(times[n][1])) for n in sizes]


def report(figures: list[Figures]) -> bool:
    print(f"\n{'N':>7}  {'plan (s)':>9}  {'floor (s)':>9}  {'ratio':>6}")
    for f in figures:
        print(f"{f.n:>7}  {f.plan:>9.3f}  {f.floor:>9.3f}  {f.ratio:>5.2f}x")
    by_n = {f.n: f for f in figures}
    checks = []
    if 1000 in by_n:
        checks.append(("N=1,000 plan <= 1.0 s", by_n[1000].plan <= 1.0, f"{by_n[1000].plan:.3f} s"))
        checks.append(("N=1,000 plan <= 2.0x floor", by_n[1000].ratio <= 2.0, f"{by_n[1000].ratio:.2f}x"))
    if 1000 in by_n and 10000 in by_n:
        scale = by_n[10000].plan / by_n[1000].plan
        checks.append(("N=10,000 plan <= 10x N=1,000", scale <= 10.0, f"{scale:.2f}x"))
    print()
    for label, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}  ({value})")
    return all(ok for _, ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="connections (repeatable; default 1000 and 10000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (median reported)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with grantctl installed")
    args = parser.parse_args()
    figures = measure(args.n or [1000, 10000], args.runs, args.python)
    sys.exit(0 if report(figures) else 1)


if __name__ == "__main__":
    main()
