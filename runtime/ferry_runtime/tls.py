"""TLS and SASL settings for the worker's clients, from the config's file paths.

Certificates and keys are files (on Kubernetes: Secret volumes the Deployment mounts); the
config names the files, never their content. :func:`pymysql_args` gives the arguments of
``pymysql.connect`` (also used for the binlog stream), :func:`kafka_settings` the librdkafka
settings. Modes follow MySQL's ``--ssl-mode``: ``disabled``, ``preferred`` (TLS when the server
offers it, unverified), ``required`` (TLS, unverified), ``verify-ca`` and ``verify-identity``.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from ferry_runtime import errors
from ferry_runtime.config import KafkaSink, TLSFiles

__all__ = ["client_context", "kafka_settings", "mysql_context", "mysqlclient_args", "pymysql_args"]


def _check_files(tls: TLSFiles) -> None:
    """Refuse missing or unreadable certificate files at once (FatalError InvalidConfig):
    retrying cannot make a Secret volume appear."""
    for what, path in (
        ("caFile", tls.ca_file),
        ("certFile", tls.cert_file),
        ("keyFile", tls.key_file),
    ):
        if path is not None and not os.access(path, os.R_OK):
            raise errors.FatalError(
                "InvalidConfig",
                f"tls.{what}: {path} cannot be read; on Kubernetes it is mounted from the "
                "Connector's caSecretRef or clientCertSecretRef",
            )


def client_context(
    mode: str,
    *,
    ca_file: str | None = None,
    ca_pem: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> ssl.SSLContext:
    """A TLS client context for MySQL ``mode`` (required, verify-ca or verify-identity): the
    CA from a file or PEM text (else the system CAs), the client certificate from files.
    The operator's probe uses it too, with the PEM it read from the Secrets."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode == "required":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = mode == "verify-identity"
        context.verify_mode = ssl.CERT_REQUIRED
        if ca_file or ca_pem:
            context.load_verify_locations(cafile=ca_file, cadata=ca_pem)
        else:
            context.load_default_certs()
    if cert_file and key_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def mysql_context(tls: TLSFiles, mode: str) -> ssl.SSLContext:
    """The client context for ``mode`` from the config's files (checked first)."""
    _check_files(tls)
    return client_context(mode, ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file)


def pymysql_args(tls: TLSFiles | None) -> dict[str, Any]:
    """Keyword arguments of ``pymysql.connect`` for the TLS settings (None: no TLS)."""
    mode = "disabled" if tls is None else tls.mode
    if mode == "disabled":
        return {"ssl_disabled": True}
    if mode == "preferred":
        return {}  # PyMySQL's own default: TLS when the server offers it, unverified
    assert tls is not None
    # An explicit context makes PyMySQL refuse a server without TLS.
    return {"ssl": mysql_context(tls, mode)}


def mysqlclient_args(tls: TLSFiles | None) -> dict[str, Any]:
    """Keyword arguments of ``MySQLdb.connect`` (the snapshot's row readers) for the same
    modes. With MariaDB's client library ``verify-ca`` is ``REQUIRED`` with the CA: the
    library verifies the chain against a CA it is given and checks the host name only under
    ``VERIFY_IDENTITY`` (which would otherwise check it for verify-ca too)."""
    mode = "disabled" if tls is None else tls.mode
    if mode == "disabled":
        return {"ssl_mode": "DISABLED"}
    assert tls is not None
    _check_files(tls)
    verify = mode in ("verify-ca", "verify-identity")
    files = {
        name: path
        for name, path in (("cert", tls.cert_file), ("key", tls.key_file))
        if path and tls.cert_file and tls.key_file
    }
    if verify:  # a CA makes the library verify the chain (not given: nothing is verified)
        files["ca"] = tls.ca_file or ssl.get_default_verify_paths().cafile or ""
    ssl_mode = {"preferred": "PREFERRED", "verify-identity": "VERIFY_IDENTITY"}.get(
        mode, "REQUIRED"
    )
    return {"ssl_mode": ssl_mode, **({"ssl": files} if files else {})}


def kafka_settings(config: KafkaSink) -> dict[str, Any]:
    """librdkafka settings for security.protocol, SASL and TLS (the password from its
    environment variable; it goes nowhere else)."""
    out: dict[str, Any] = {}
    if config.security_protocol != "PLAINTEXT":
        out["security.protocol"] = config.security_protocol
    if config.sasl_mechanism:
        out["sasl.mechanism"] = config.sasl_mechanism
        out["sasl.username"] = os.environ.get(config.sasl_username_env or "", "")
        out["sasl.password"] = os.environ.get(config.sasl_password_env or "", "")
    tls = config.tls
    if tls is not None and config.security_protocol.endswith("SSL"):
        _check_files(tls)
        if tls.ca_file:
            out["ssl.ca.location"] = tls.ca_file
        if tls.cert_file and tls.key_file:
            out["ssl.certificate.location"] = tls.cert_file
            out["ssl.key.location"] = tls.key_file
        out["ssl.endpoint.identification.algorithm"] = (
            "https" if tls.mode == "verify-identity" else "none"
        )
    return out
