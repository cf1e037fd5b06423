"""A throwaway certificate authority for mutual TLS inside one service.

SeaweedFS's master, volume server, filer and S3 gateway talk gRPC to each
other; without TLS any local process can call the filer's gRPC API and create
or delete objects with no S3 credentials. Given a CA and one certificate that
every component presents and checks (SeaweedFS does not check host names),
only holders of the key get through. A fresh CA is made for every start and
its key is never written: nothing else ever needs to sign.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA's certificate, and the certificate and key every party uses."""

    ca: Path
    cert: Path
    key: Path


def tls_files(directory: Path) -> TlsFiles:
    return TlsFiles(directory / "ca.crt", directory / "node.crt", directory / "node.key")


def write_mutual_tls(directory: Path, common_name: str) -> TlsFiles:
    """A new CA and one certificate signed by it (client and server use, valid for
    127.0.0.1 and localhost), written to ``directory``; the key file is 0600."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    node_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    node_cert = (
        _builder(node_name, ca_name, node_key.public_key())
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = tls_files(directory)
    _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(files.cert, node_cert.public_bytes(serialization.Encoding.PEM))
    _write(files.key, node_key.private_bytes(serialization.Encoding.PEM,
           serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
