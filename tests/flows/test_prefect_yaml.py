"""prefect.yaml declares the deployments the docs promise, on flows that exist."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from flows.local import POOL, PROJECT_DIR


def _config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())
    return data


def test_deployments_point_at_real_flows() -> None:
    deps = {d["name"]: d for d in _config()["deployments"]}
    assert set(deps) == {"extract", "pickup", "ingest"}
    expected_flow = {"extract": "extract", "pickup": "extract", "ingest": "ingest"}
    for name, dep in deps.items():
        path, func = dep["entrypoint"].split(":")
        assert (PROJECT_DIR / path).is_file()
        module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
        assert getattr(module, func).name == expected_flow[name]  # `extract/extract` etc.
        assert dep["work_pool"]["name"] == POOL


def test_pickup_is_scheduled_one_at_a_time() -> None:
    pickup = next(d for d in _config()["deployments"] if d["name"] == "pickup")
    assert pickup["schedules"][0]["interval"] > 0 and pickup["schedules"][0]["active"]
    assert pickup["concurrency_limit"]["limit"] == 1
    assert pickup["parameters"]["settle_seconds"] > 0


def test_pull_step_works_from_any_checkout() -> None:
    (step,) = _config()["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == \
        "{{ $PROJECT_DIR }}"
