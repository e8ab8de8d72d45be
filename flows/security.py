"""Dask over TLS: the certificates a run presents to an existing scheduler.

A Dask scheduler runs whatever its clients send, on every worker: on a network,
only a ``tls://`` scheduler started with a dedicated certificate authority keeps
strangers out (mutual TLS: scheduler, workers and clients each present a certificate
signed by that CA; ``docs/operations.md``). A run names its certificates explicitly
(``bahfs extract --dask-tls-ca/--dask-tls-cert/--dask-tls-key``, or the flow's
``dask_tls_*`` parameters), or leaves them to Dask's own configuration
(``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``) on the machine
where the flow runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distributed import Security

from store.errors import ConfigError, NotFoundError

TLS = "tls://"


def _readable(kind: str, path: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"the Dask TLS {kind} is not there", path=p,
                            expected="a PEM file readable where the flow runs")
    return str(p.resolve())


@dataclass(frozen=True)
class TlsFiles:
    """The certificates a run presents to a ``tls://`` scheduler, checked once where
    the run starts: the CA, this client's certificate and key (resolved paths; the
    key may be in the certificate file), or Dask's configured ones (``configured``)."""

    ca_file: str = ""
    cert: str = ""
    key: str = ""
    configured: bool = False

    def security(self) -> Security:
        """Dask's ``Security`` for these files (encryption required), or Dask's
        configured one."""
        if self.configured:
            return Security()  # type: ignore[no-untyped-call]  # Dask's configuration
        return Security(  # type: ignore[no-untyped-call]
            tls_ca_file=self.ca_file, tls_client_cert=self.cert,
            tls_client_key=self.key or None, require_encryption=True)


def tls_files(address: str | None, ca_file: str | None = None, cert: str | None = None,
              key: str | None = None) -> TlsFiles | None:
    """What the client of the scheduler at ``address`` presents: None for a local
    cluster or a ``tcp://`` scheduler given no certificates; for ``tls://``, the given
    CA, certificate and key (``key`` may be left out when ``cert`` holds it), else
    Dask's configured ones. Refused with a clear error: certificates for a non-TLS
    address, half a set, a file that is not there, a ``tls://`` address with none."""
    given = [x for x in (ca_file, cert, key) if x]
    tls = bool(address) and str(address).startswith(TLS)
    if given and not tls:
        raise ConfigError(f"Dask TLS certificates given, but the scheduler address is "
                          f"{address or 'a local cluster'}",
                          expected="a tls://host:port scheduler address")
    if not tls:
        return None
    if given:
        if not (ca_file and cert):
            raise ConfigError("Dask TLS needs the CA and this client's certificate",
                              expected="--dask-tls-ca and --dask-tls-cert (and "
                                       "--dask-tls-key unless the certificate holds it)")
        return TlsFiles(_readable("CA", ca_file), _readable("certificate", cert),
                        _readable("key", key) if key else "")
    configured = Security()  # type: ignore[no-untyped-call]  # Dask's configuration
    if not (getattr(configured, "tls_ca_file", None)
            and getattr(configured, "tls_client_cert", None)):
        raise ConfigError(f"the scheduler {address} asks for TLS, and no certificates "
                          "were given or configured",
                          expected="--dask-tls-ca/--dask-tls-cert/--dask-tls-key, or "
                                   "distributed.comm.tls in Dask's configuration")
    return TlsFiles(configured=True)


def dask_security(address: str | None, ca_file: str | None = None,
                  cert: str | None = None, key: str | None = None) -> Security | None:
    """:func:`tls_files` as Dask's ``Security`` (None where no TLS is asked for)."""
    files = tls_files(address, ca_file, cert, key)
    return files.security() if files is not None else None
