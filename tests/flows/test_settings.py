"""A run's settings are parsed once, where the run starts (``flows.settings``): the
device, the plan, where the tasks run and the Dask TLS files, each refused with a
clear error before any work; what the host and the tasks get is derived from the
parsed value, never parsed again."""

from __future__ import annotations

from pathlib import Path

import pytest

import flows.settings as settings_module
from extractors.plan import plan_from_names
from flows.extract import extract
from flows.settings import run_settings
from store.devices import DeviceSetting, parse_device
from store.errors import ConfigError, NotFoundError


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("BAHFS_DEVICE", "BAHFS_THREADS", "BAHFS_DASK_ADDRESS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_device_is_parsed_once_and_handed_down(cpu_only: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def counted(text: str | None = None) -> DeviceSetting:
        seen.append(text)
        return parse_device(text)

    cpu_only.setattr(settings_module, "parse_device", counted)
    run = run_settings(extractors=["logmel"], device="CPU", dask_workers=2,
                       videos_per_worker_asked=3)
    host, task = run.host_runtime(), run.task_runtime()
    assert seen == ["CPU"]  # once, for the host and every task
    assert run.plan == plan_from_names(["logmel"])
    assert host.device == task.device == DeviceSetting("cpu")
    assert (run.where.address, run.where.gpus, run.tls) == (None, (), None)
    assert (run.videos, task.batch_rows, run.workers) == (3, 48, 2)
    assert task.threads == host.threads == run.threads >= 1


def test_every_setting_is_refused_before_any_work(tmp_path: Path,
                                                  cpu_only: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        run_settings(device="gpu")
    with pytest.raises(ConfigError, match="not both"):
        run_settings(extractors=["logmel"], plan=tmp_path / "plan.yaml")
    with pytest.raises(ConfigError, match="plan file not found"):
        run_settings(plan=tmp_path / "plan.yaml")
    with pytest.raises(ConfigError, match="has no scheme"):
        run_settings(dask_address="h:8786")
    with pytest.raises(ConfigError, match="tls://host:port"):
        run_settings(dask_address="tcp://h:8786", tls=("ca.pem", "c.pem", None))
    with pytest.raises(NotFoundError, match="TLS CA"):
        run_settings(dask_address="tls://h:8786", tls=(str(tmp_path / "ca.pem"),
                                                      str(tmp_path / "c.pem"), None))


def test_tls_files_are_checked_once_and_become_dask_security(
        tmp_path: Path, cpu_only: pytest.MonkeyPatch) -> None:
    ca, cert = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.write_text("ca")
    cert.write_text("cert and key")
    run = run_settings(dask_address="tls://h:8786", tls=(str(ca), str(cert), None))
    assert run.tls is not None and (run.tls.ca_file, run.tls.cert) == (str(ca), str(cert))
    security = run.security()
    assert security is not None and security.require_encryption
    assert security.tls_ca_file == str(ca) and security.tls_client_cert == str(cert)


def test_the_flow_takes_parsed_settings_or_the_options_not_both(
        cpu_only: pytest.MonkeyPatch) -> None:
    run = run_settings(extractors=["logmel"], device="cpu")
    with pytest.raises(ConfigError, match="settings and separate options"):
        extract.fn(store="s", settings=run, device="cpu")
