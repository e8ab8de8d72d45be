"""Secured multi-host runs, on 127.0.0.1: a Dask scheduler and worker over mutual TLS
(certificates made here with ``cryptography``) and a Prefect server with basic
authentication. Refused: a plain-TCP Dask client, a client with a certificate of
another CA, a Prefect client without (or with the wrong) credentials, on HTTP and on
the events websocket. Served: the ``extract`` deployment run by an authorised Prefect
worker on the TLS cluster; its traces (server database, logs) carry no demographics.
``bahfs extract --dask-address tls://...`` hands its certificates to the same flow
parameters (its options are checked before Prefect starts)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed import Client, Security

from bahfs.sample.generate import SampleConfig
from flows.cluster import LOCAL_TLS, dask_runner
from flows.local import AUTH_CLIENT_ENV, PROJECT_DIR, LocalPrefect
from flows.security import dask_security
from store.errors import ConfigError, NotFoundError
from store.tables import read_table

BIN = Path(sys.executable).parent
AUTH = "bahfs:correct-horse-battery"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(folder: Path, cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / f"{cn}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_cert(folder: Path, cn: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
              ) -> tuple[Path, Path]:
    """A certificate for ``cn`` (127.0.0.1, client and server use) signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca[0].subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(cn)]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .sign(ca[1], hashes.SHA256()))
    crt, pem = folder / f"{cn}.crt", folder / f"{cn}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return crt, pem


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("certs")
    ca, rogue = make_ca(d, "bahfs-ca"), make_ca(d, "rogue-ca")
    out = {"ca": d / "bahfs-ca.pem"}
    for role in ("scheduler", "worker", "client"):
        out[f"{role}.crt"], out[f"{role}.key"] = make_cert(d, role, ca)
    out["rogue.crt"], out["rogue.key"] = make_cert(d, "rogue", rogue)
    return out


def test_tls_options_are_checked(certs: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bahfs.cli import app

    ca, crt, key = str(certs["ca"]), str(certs["client.crt"]), str(certs["client.key"])
    assert dask_security(None) is None and dask_security("tcp://h:8786") is None
    with pytest.raises(ConfigError, match="tls://host:port"):
        dask_security("tcp://h:8786", ca, crt, key)
    with pytest.raises(ConfigError, match="CA and this client's certificate"):
        dask_security("tls://h:8786", ca)
    with pytest.raises(NotFoundError, match="TLS key"):
        dask_security("tls://h:8786", ca, crt, str(tmp_path / "nope.key"))
    with pytest.raises(ConfigError, match="no certificates"):
        dask_security("tls://h:8786")
    sec = dask_security("tls://h:8786", ca, crt, key)
    assert sec is not None and sec.require_encryption
    bad = CliRunner().invoke(app, ["extract", str(tmp_path), str(tmp_path / "s"),
                                   "--dask-address", "tls://127.0.0.1:1", "--dask-tls-ca", ca,
                                   "--dask-tls-cert", str(tmp_path / "gone.pem")])
    assert bad.exit_code == 2 and "gone.pem" in bad.output and "TLS certificate" in bad.output


@pytest.mark.slow  # a local cluster of one worker (~10 s)
def test_the_local_cluster_refuses_clients_without_its_certificate() -> None:
    from distributed import LocalCluster

    kwargs = {**dask_runner(None, 1).cluster_kwargs, "env": {}}  # type: ignore[attr-defined]
    assert LOCAL_TLS.items() <= kwargs.items()
    with LocalCluster(**kwargs) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with _client(address, cluster.security) as ours:
            assert ours.submit(sum, [1, 2]).result(timeout=60) == 3
        with pytest.raises((OSError, TimeoutError)):
            _client(address.replace("tls://", "tcp://")).close()
        stranger = Security.temporary()  # another self-made certificate
        with pytest.raises((OSError, TimeoutError)):
            _client(address, stranger).close()


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=PROJECT_DIR, start_new_session=True)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]
            ) -> Iterator[tuple[LocalPrefect, str]]:
    """An authenticated Prefect server on 127.0.0.1, a TLS Dask scheduler and one TLS
    worker whose tasks report to that server (with its credentials)."""
    home = tmp_path_factory.mktemp("secured")
    procs: list[subprocess.Popen[bytes]] = []
    with LocalPrefect(home / "prefect", host="127.0.0.1", auth=AUTH,
                      env={"BAHFS_THREADS": "1"}) as prefect:
        try:
            tls = ["--tls-ca-file", str(certs["ca"])]
            info = home / "scheduler.json"
            procs.append(_start([str(BIN / "dask"), "scheduler", "--protocol", "tls",
                                 "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(info), *tls,
                                 "--tls-cert", str(certs["scheduler.crt"]),
                                 "--tls-key", str(certs["scheduler.key"])],
                                home / "scheduler.log", prefect.env))
            deadline = time.monotonic() + 60
            while not info.is_file() and time.monotonic() < deadline:
                time.sleep(0.2)
            address = json.loads(info.read_text())["address"]
            assert address.startswith("tls://127.0.0.1:")
            procs.append(_start([str(BIN / "dask"), "worker", address, "--nthreads", "1",
                                 "--nworkers", "1", "--no-dashboard", *tls,
                                 "--tls-cert", str(certs["worker.crt"]),
                                 "--tls-key", str(certs["worker.key"])],
                                home / "worker.log", prefect.env))
            yield prefect, address
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def _client(address: str, security: Security | None = None) -> Client:
    return Client(address, security=security, timeout=5, set_as_default=False)


@pytest.mark.slow  # a Prefect server, a Dask cluster, an extract run (~1.5 min)
@pytest.mark.timeout(600)
def test_secured_cluster_refuses_strangers_and_serves_authorised_runs(
        secured: tuple[LocalPrefect, str], certs: dict[str, Path], tmp_path: Path,
        generated: Callable[[SampleConfig], Path]) -> None:
    prefect, address = secured
    # Dask: the authorised client sees the worker; plain TCP and a rogue CA are refused
    ours = Security(tls_ca_file=str(certs["ca"]), tls_client_cert=str(certs["client.crt"]),
                    tls_client_key=str(certs["client.key"]), require_encryption=True)
    with _client(address, ours) as c:
        c.wait_for_workers(1, timeout=60)
    with pytest.raises((OSError, TimeoutError)):
        _client(address.replace("tls://", "tcp://")).close()
    rogue = Security(tls_ca_file=str(certs["ca"]), tls_client_cert=str(certs["rogue.crt"]),
                     tls_client_key=str(certs["rogue.key"]), require_encryption=True)
    with pytest.raises((OSError, TimeoutError)):
        _client(address, rogue).close()

    # Prefect: no credentials, or wrong ones, are refused (HTTP and the events socket)
    for header in ({}, {"Authorization": "Basic Ym9ndXM6Ym9ndXM="}):
        req = urllib.request.Request(f"{prefect.api_url}/deployments/filter", data=b"{}",
                                     headers={"Content-Type": "application/json", **header})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 401
    anonymous = {k: v for k, v in prefect.env.items() if k != AUTH_CLIENT_ENV}
    res = subprocess.run([prefect.exe, "deployment", "ls"], env=anonymous, cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "401" in res.stdout + res.stderr
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws_url = prefect.api_url.replace("http://", "ws://") + "/events/in"
    with connect(ws_url, subprotocols=["prefect"], open_timeout=10) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "auth", "token": "bogus:bogus"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    # served: the deployment, through an authorised worker, on the TLS cluster
    release = generated(SampleConfig(participants=2, seed=5, max_questions=1,
                                     max_seconds=14.0, workers=1))
    params = {"source": str(release), "store": str(tmp_path / "store-a"),
              "extractors": ["logmel"], "dask_address": address,
              "dask_tls_ca": str(certs["ca"]), "dask_tls_cert": str(certs["client.crt"]),
              "dask_tls_key": str(certs["client.key"])}
    prefect.deploy("extract")
    prefect.run("extract/extract", params, watch=False)
    assert prefect.start_worker(run_once=True).wait(timeout=300) == 0
    n_videos = read_table(tmp_path / "store-a", "videos").height
    assert n_videos and read_table(tmp_path / "store-a", "extracted").height == n_videos

    # nothing personal where it need not be: no demographic value of the participants
    # in the server's database, the Prefect and Dask logs of that run
    people = read_table(tmp_path / "store-a", "participants")
    values = {v for c in ("age_range", "birth_country", "province", "ethnicity",
                          "ethnicity_simplified", "gender")
              for v in people[c].drop_nulls().to_list()
              if len(v) >= 5 and v != "Other"}  # a word Prefect's own schema holds
    assert values
    traces = [*prefect.home.glob("prefect.db*"), *prefect.home.glob("*.log"),
              *prefect.home.parent.glob("*.log")]
    assert any(p.name.startswith("prefect.db") for p in traces) and len(traces) >= 4
    for path in traces:
        data = path.read_bytes()
        assert not [v for v in values if v.encode() in data], path
