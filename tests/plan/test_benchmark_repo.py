"""The benchmark's generated repo is realistic and plans to exactly the mix it claims."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from grantctl.commands.plan import run_plan
from grantctl.repo import Repo

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "plan_scale.py"
KIND_OF = {
    "new": "connect",
    "expired": "reauthorize",
    "wrong-org": "wrong-organization",
    "excess": "reduce",
    "missing": "extend",
    "stale": "refresh",
    "unpinned": "pin",
    "orphan": "orphan",
}


@pytest.fixture(scope="module")
def plan_scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plan_scale", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plan_scale"] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_generated_repo_plans_to_the_generated_mix(plan_scale: Any, tmp_path: Path) -> None:
    tally = plan_scale.generate(tmp_path / "repo", 300)

    outcome = run_plan(Repo.load(tmp_path / "repo"), fmt="json")

    summary = json.loads(outcome.output)["summary"]
    assert summary["byKind"] == {kind: tally.get(situation, 0) for situation, kind in KIND_OF.items()}
    assert summary["unchanged"] == tally["match"]
    assert all(tally.get(situation) for situation in KIND_OF)  # every situation occurs at N=300


def test_state_files_look_like_sops_wrote_them(plan_scale: Any, tmp_path: Path) -> None:
    plan_scale.generate(tmp_path / "repo", 20)

    text = next((tmp_path / "repo" / "state").glob("*.yaml")).read_text()

    assert "\ntokens:\n    access_token: ENC[AES256_GCM,data:" in text
    assert "\nsops:\n    age:\n" in text
    assert "-----BEGIN AGE ENCRYPTED FILE-----" in text


def test_report_judges_the_targets(plan_scale: Any, capsys: pytest.CaptureFixture[str]) -> None:
    figures = plan_scale.Figures
    good = [figures(1000, 0.6, 0.4), figures(10000, 5.0, 3.9)]
    slow = [figures(1000, 1.2, 0.4), figures(10000, 13.0, 3.9)]

    assert plan_scale.report(good) is True
    assert plan_scale.report(slow) is False
    assert "FAIL  N=1,000 plan <= 2.0x floor  (3.00x)" in capsys.readouterr().out
