"""HTTPS for the gateway (optional: `--https-port`), with certificates of its own when none is
given.

App Engine serves every app over HTTPS, and `secure: always` handlers redirect HTTP to it. To
try that locally the gateway can listen for HTTPS too. Without `--tls-cert`/`--tls-key` it keeps
a local CA in the data dir (`tls/ca.pem`; clients trust that file: `curl --cacert`,
`httpx.Client(verify=...)`, `requests.get(..., verify=...)`), as mkcert does:
- the certificate for `localhost`, 127.0.0.1 and ::1 is made at start;
- an app's name (`PROJECT.localhost`, `SERVICE-dot-PROJECT.localhost`, ...) gets a certificate
  of its own at its first handshake, from the name the client sends (SNI). A wildcard cannot
  stand in: TLS clients refuse `*.localhost`, a wildcard over a single label.
Certificates last a year and are renewed when less than a week is left. Give your own
certificate instead (for example mkcert's, which browsers trust) with `--tls-cert`/`--tls-key`.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
import ssl
from pathlib import Path
from typing import Any

from cloudlet.core.paths import write_atomic

__all__ = ["ca_path", "certificate_files", "server_context"]

logger = logging.getLogger(__name__)

_RENEW_BEFORE = datetime.timedelta(days=7)
_LIFETIME = datetime.timedelta(days=365)
_MAX_NAMES = 1024  # certificates made per gateway run, one per app name asked for
_LOCAL_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+localhost$")


def ca_path(tls_dir: Path) -> Path:
    """The CA file clients trust for the gateway's own certificates."""
    return tls_dir / "ca.pem"


def certificate_files(tls_dir: Path, cert: str = "", key: str = "") -> tuple[Path, Path]:
    """The certificate and key to serve: the ones given, or the gateway's own for localhost
    (made now, with the local CA, if missing or about to expire)."""
    if cert or key:
        if not (cert and key):
            raise ValueError(
                "Give both --tls-cert and --tls-key, or neither (the gateway then "
                "makes its own certificates)."
            )
        for path in (cert, key):
            if not Path(path).expanduser().is_file():
                raise ValueError(f"TLS file [{path}] does not exist; fix --tls-cert/--tls-key.")
        return Path(cert).expanduser(), Path(key).expanduser()
    ca = _LocalCA(tls_dir)
    return ca.certificate_for("localhost"), ca.key_path


def server_context(cert: Path, key: Path, own_ca_dir: Path | None = None) -> ssl.SSLContext:
    """The server side of TLS. With `own_ca_dir` (the gateway's own certificates), each
    `*.localhost` name a client asks for is served a certificate for that name."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if own_ca_dir is not None:
        ca = _LocalCA(own_ca_dir)
        contexts: dict[str, ssl.SSLContext] = {}

        def pick(connection: Any, name: str | None, _default: ssl.SSLContext) -> None:
            name = (name or "").lower().rstrip(".")
            if not _LOCAL_NAME.match(name):
                return  # the localhost certificate
            if name not in contexts and len(contexts) >= _MAX_NAMES:
                return  # a client inventing names gets no more certificates (or files) made
            if name not in contexts:
                try:
                    named = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    named.load_cert_chain(ca.certificate_for(name), ca.key_path)
                except (OSError, ValueError, ssl.SSLError):
                    logger.exception("cannot make a certificate for %s", name)
                    return
                contexts[name] = named
            connection.context = contexts[name]

        context.sni_callback = pick
    return context


class _LocalCA:
    """The gateway's CA (`ca.pem`, `ca-key.pem`) and the certificates it signs (`hosts/`), all
    for one key (`key.pem`): a new name costs a signature, not a key."""

    def __init__(self, tls_dir: Path) -> None:
        self.dir = tls_dir
        self.key_path = tls_dir / "key.pem"
        if not (
            _still_valid(ca_path(tls_dir))
            and (tls_dir / "ca-key.pem").is_file()
            and self.key_path.is_file()
        ):
            self._make_ca()

    def certificate_for(self, name: str) -> Path:
        """The certificate chain (this name's certificate, then the CA's) for `name`."""
        path = self.dir / "hosts" / f"{name}.pem"
        if not _still_valid(path):
            self._sign(name, path)
        return path

    def _make_ca(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudlet local CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_atomic(self.dir / "ca-key.pem", _pem_key(ca_key), private=True)
        write_atomic(self.key_path, _pem_key(ec.generate_private_key(ec.SECP256R1())), private=True)
        write_atomic(ca_path(self.dir), _pem_cert(ca))
        for old in (self.dir / "hosts").glob("*.pem"):  # signed by the CA this one replaces
            old.unlink(missing_ok=True)

    def _sign(self, name: str, path: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca = x509.load_pem_x509_certificate(ca_path(self.dir).read_bytes())
        ca_key: Any = serialization.load_pem_private_key(
            (self.dir / "ca-key.pem").read_bytes(), None
        )
        key: Any = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        names: list[x509.GeneralName] = [x509.DNSName(name)]
        if name == "localhost":
            names += [
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + _LIFETIME, ca.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_atomic(path, _pem_cert(cert) + _pem_cert(ca))


def _still_valid(cert_path: Path) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > _RENEW_BEFORE


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
