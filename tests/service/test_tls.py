"""Server TLS and mutual TLS (certificates made on the fly), and verified upstream TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_upstream import FakeUpstream, Stream
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._config_loader import load_config
from router_core._router import load_router
from router_core.errors import ConfigError, ProviderUnavailable
from router_svc._tls import server_credentials
from router_svc.providers import ChatMessage, ProviderRequest, ProviderSettings, make_provider

REQUEST = pb.RouteRequest(messages=[message("hello")])


@dataclass
class Pair:
    cert: bytes
    key: bytes
    obj: x509.Certificate
    private: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn: str, issuer: Pair | None = None, *, ca: bool = False) -> Pair:
    """An EC certificate for ``cn`` (localhost/127.0.0.1 SANs), self-signed or by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.obj.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    signer = issuer.private if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    return Pair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert,
        key,
    )


@pytest.fixture(scope="module")
def pki() -> dict[str, Pair]:
    ca = make_cert("test-ca", ca=True)
    other_ca = make_cert("other-ca", ca=True)
    return {
        "ca": ca,
        "server": make_cert("localhost", ca),
        "client": make_cert("client-a", ca),
        "stranger": make_cert("client-b", other_ca),
    }


def write_tls_config(tmp_path: Path, pki: dict[str, Pair], *, mutual: bool) -> Path:
    (tmp_path / "server.pem").write_bytes(pki["server"].cert)
    (tmp_path / "server.key").write_bytes(pki["server"].key)
    (tmp_path / "ca.pem").write_bytes(pki["ca"].cert)
    tls = "  tls: {cert_file: server.pem, key_file: server.key"  # relative to the config file
    tls += ", client_ca_file: ca.pem}\n" if mutual else "}\n"
    path = tmp_path / "router.yaml"
    path.write_text(RULES_CONFIG.format(version="tls-1") + tls, encoding="utf-8")
    return path


async def route_over(port: int, credentials: grpc.ChannelCredentials | None) -> pb.RouteDecision:
    target = f"localhost:{port}"
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials)
    )
    async with channel:
        return await stub(channel).Route(REQUEST, timeout=5)


async def test_tls_server_answers_tls_clients_only(tmp_path: Path, pki: dict[str, Pair]) -> None:
    path = write_tls_config(tmp_path, pki, mutual=False)
    async with running_server(load_router(path)) as (server, _):
        ok = await route_over(server.port, grpc.ssl_channel_credentials(pki["ca"].cert))
        with pytest.raises(grpc.aio.AioRpcError) as plain:
            await route_over(server.port, None)
        with pytest.raises(grpc.aio.AioRpcError) as untrusted:  # the client checks the server
            await route_over(server.port, grpc.ssl_channel_credentials(pki["stranger"].cert))
    assert ok.model
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    path = write_tls_config(tmp_path, pki, mutual=True)
    root = pki["ca"].cert
    async with running_server(load_router(path)) as (server, _):
        ok = await route_over(
            server.port, grpc.ssl_channel_credentials(root, pki["client"].key, pki["client"].cert)
        )
        failures = []
        for creds in (
            grpc.ssl_channel_credentials(root),  # no client certificate
            grpc.ssl_channel_credentials(root, pki["stranger"].key, pki["stranger"].cert),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await route_over(server.port, creds)
            failures.append(err.value.code())
    assert ok.model
    assert failures == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]


def test_unreadable_or_non_pem_files_are_config_errors(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    path = write_tls_config(tmp_path, pki, mutual=True)
    (tmp_path / "ca.pem").unlink()
    with pytest.raises(ConfigError, match=r"server\.tls\.client_ca_file: cannot read"):
        server_credentials(load_config(path))
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"server\.tls\.client_ca_file: .* is not a PEM file"):
        server_credentials(load_config(path))


def test_no_tls_section_means_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(RULES_CONFIG.format(version="p"), encoding="utf-8")
    assert server_credentials(load_config(path)) is None


async def test_providers_verify_upstream_certificates(tmp_path: Path, pki: dict[str, Pair]) -> None:
    """An HTTPS upstream whose certificate the system does not trust is refused, not used."""
    (tmp_path / "s.pem").write_bytes(pki["server"].cert)
    (tmp_path / "s.key").write_bytes(pki["server"].key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "s.pem", tmp_path / "s.key")
    async with FakeUpstream(Stream(("secret",)), ssl_context=context) as fake:
        spec = load_config(_write_catalog(tmp_path, fake.openai_base)).models[0]
        provider = make_provider(spec, ProviderSettings(trust_env=False))
        request = ProviderRequest("big", (ChatMessage("user", "hi"),), max_tokens=4, timeout=5)
        try:
            with pytest.raises(ProviderUnavailable):
                [e async for e in provider.stream(request)]
        finally:
            await provider.aclose()
    assert fake.requests == []  # the TLS handshake failed before any request was sent


def test_no_provider_code_disables_certificate_checks() -> None:
    root = Path(__file__).resolve().parents[2] / "router_svc"
    sources = "\n".join(p.read_text() for p in root.rglob("*.py"))
    assert "verify=False" not in sources and "CERT_NONE" not in sources


def _write_catalog(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "catalog.yaml"
    text = RULES_CONFIG.format(version="c").replace("http://127.0.0.1:9/v1", base)
    path.write_text(text, encoding="utf-8")
    return path
