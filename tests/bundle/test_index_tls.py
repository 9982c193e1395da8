"""Reading an https index as pip does: its certificate verified, unless the host is a `trusted-host`.

A real HTTPS server on 127.0.0.1 with a self-signed certificate serves a PEP 503 page and a wheel. relay's
client (`builder.bundle.index.Client`) refuses it by default, downloads from it when the host is trusted,
and trusts it when pip's `cert` names the certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from index_server import Index, serving

from builder.bundle import index, pipconfig

WHEEL = b"not really a wheel, but bytes with a sha256"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_index(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(index URL, the server's certificate), serving /simple/money/ and its one wheel."""
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "money-1.0-py3-none-any.whl").write_bytes(WHEEL)
    cert, key = self_signed(tmp_path)
    with serving(Index(folder, mode="html", tls=(cert, key))) as served:
        yield served.simple, cert


def client(url: str, **settings) -> index.Client:
    return index.Client(pipconfig.Settings(index_url=url, retries=0, timeout=10, **settings), environ={})


def test_an_unverifiable_certificate_is_refused(https_index) -> None:
    url, _ = https_index
    with pytest.raises(index.Unserved):
        client(url).files("money")


@pytest.mark.parametrize("trust", ["trusted-host", "trusted-host with port", "cert"])
def test_a_trusted_host_or_pips_cert_reads_and_downloads(https_index, tmp_path: Path, trust: str) -> None:
    url, cert = https_index
    port = url.split(":")[2].split("/")[0]
    settings = {"trusted-host": {"trusted_hosts": ("127.0.0.1",)},
                "trusted-host with port": {"trusted_hosts": (f"127.0.0.1:{port}",)},
                "cert": {"cert": str(cert)}}[trust]
    reader = client(url, **settings)

    [found] = reader.files("money")
    (tmp_path / "got").mkdir()
    path, sha = reader.download(found, tmp_path / "got")

    assert path.read_bytes() == WHEEL and sha == hashlib.sha256(WHEEL).hexdigest()


@pytest.mark.parametrize("bundle", ["the same file", "a link to it", "only the environment's"])
def test_a_ca_bundle_named_twice_is_trusted_once_and_still_verifies(https_index, tmp_path: Path, bundle: str) -> None:
    """pip's `cert` and REQUESTS_CA_BUNDLE often name one file (loaded once); what either names is trusted."""
    url, cert = https_index
    link = tmp_path / "link.pem"
    link.symlink_to(cert)
    environ = {"REQUESTS_CA_BUNDLE": str(link if bundle == "a link to it" else cert)}
    settings = pipconfig.Settings(index_url=url, retries=0, timeout=10,
                                  cert=None if bundle == "only the environment's" else str(cert))

    [found] = index.Client(settings, environ=environ).files("money")

    assert found.filename == "money-1.0-py3-none-any.whl"
    with pytest.raises(index.Unserved):  # and one that names neither still refuses the server
        index.Client(pipconfig.Settings(index_url=url, retries=0, timeout=10), environ={}).files("money")
