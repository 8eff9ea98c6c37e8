"""Test certificates made here with the ``cryptography`` package: a CA, a server certificate
for ``localhost``/``127.0.0.1``, a client certificate, and a second CA with a certificate of its
own (what a client or server must refuse). Shared by the TLS tests of the gRPC server and of
Triton."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

__all__ = ["make_cert", "new_key", "pem_key", "write_pki"]


def new_key():
    """A fresh P-256 private key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def pem_key(key) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM (what servers read)."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_cert(subject_cn, key, issuer_cn=None, issuer_key=None, ca=False, server=False):
    """A PEM certificate valid for a day: self-signed, or signed by ``issuer_key``; a CA, a
    server certificate (localhost and 127.0.0.1, server auth) or else a client one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or subject_cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(folder: Path) -> dict[str, Path]:
    """Write the test PKI into ``folder``; ``{file name: path}``: ``ca.pem``, ``other-ca.pem``,
    ``server.pem``/``.key`` (signed by ca, for localhost and 127.0.0.1), ``client.pem``/``.key``
    (signed by ca) and ``rogue.pem``/``.key`` (signed by the other CA)."""
    files = {}

    def write(name, data):
        files[name] = folder / name
        files[name].write_bytes(data)

    ca_key, other_key = new_key(), new_key()
    write("ca.pem", make_cert("ahmer test CA", ca_key, ca=True))
    write("other-ca.pem", make_cert("other CA", other_key, ca=True))
    server_key, client_key, rogue_key = new_key(), new_key(), new_key()
    write("server.pem", make_cert("localhost", server_key, "ahmer test CA", ca_key, server=True))
    write("server.key", pem_key(server_key))
    write("client.pem", make_cert("app", client_key, "ahmer test CA", ca_key))
    write("client.key", pem_key(client_key))
    write("rogue.pem", make_cert("rogue", rogue_key, "other CA", other_key))
    write("rogue.key", pem_key(rogue_key))
    return files
