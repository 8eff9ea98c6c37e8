"""Bearer tokens and TLS/mTLS with certificates made here (a CA, a server and a client
certificate from the ``cryptography`` package), against real servers."""

from __future__ import annotations

import grpc
import pytest
from pki import write_pki
from serving import TOKEN, ServerThread, metric_value, settled_metric, shared_analyzer

cryptography = pytest.importorskip("cryptography")


# -- certificates ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, model_store):
    token_file = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    token_file.write_text(f"# app tokens\n{TOKEN}\n\n")
    srv = ServerThread(
        analyzer=shared_analyzer(), token_file=token_file, tokens="second-token-abcdefghijkl"
    ).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(pki, model_store):
    srv = ServerThread(
        analyzer=shared_analyzer(),
        tls_cert=pki["server.pem"],
        tls_key=pki["server.key"],
        client_ca=pki["ca.pem"],
        tokens=TOKEN,
    ).wait_ready()
    yield srv
    srv.stop()


# -- tokens --------------------------------------------------------------------------------------


def _models(target, **options):
    from ahmer.client import AhmerClient

    with AhmerClient(target, **options) as client:
        return client.get_models(timeout=10)


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code()


def test_tokens_from_file_and_env_are_accepted(token_server):
    assert _models(token_server.target, token=TOKEN).models
    assert _models(token_server.target, token="second-token-abcdefghijkl").models


def test_missing_or_wrong_token_is_unauthenticated(token_server):
    from ahmer.client import AhmerClient

    url = token_server.metrics_url
    before = metric_value(url, "grpc_server_handled_total",
                          {"grpc_method": "GetModels", "grpc_code": "UNAUTHENTICATED"})  # fmt: skip
    assert _code(lambda: _models(token_server.target)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = TOKEN[:-1] + "X"
    assert _code(lambda: _models(token_server.target, token=wrong)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    with AhmerClient(token_server.target) as client:
        call = client.stub.GetModels
        from ahmer.v1 import service_pb2

        with pytest.raises(grpc.RpcError) as err:
            call(service_pb2.GetModelsRequest(), metadata=(("authorization", f"Basic {TOKEN}"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "Bearer" in err.value.details()
        # streaming calls are checked too, before any message is read
        with pytest.raises(grpc.RpcError) as err:
            list(client.stream(iter([])))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # health checks need no token (orchestrators probe without one)
        assert client.health() == "SERVING"
    denied = {"grpc_method": "GetModels", "grpc_code": "UNAUTHENTICATED"}
    assert settled_metric(url, "grpc_server_handled_total", denied, before + 3) == before + 3


def test_token_auth_unit():
    from ahmer.service.grpc.auth import AuthError, TokenAuth, load_tokens

    auth = TokenAuth([TOKEN, "another-token-123456789"])
    assert auth.check([("authorization", f"Bearer {TOKEN}")]) is None
    assert auth.check([("Authorization", "bearer another-token-123456789")]) is None
    assert auth.check([]) is not None
    assert auth.check([("authorization", f"Bearer {TOKEN}x")]) == "invalid bearer token"
    assert TokenAuth([]).check([]) is None  # no tokens configured: auth is off
    with pytest.raises(AuthError, match="16 characters"):
        load_tokens(tokens="short")


# -- TLS -----------------------------------------------------------------------------------------


def test_mtls_with_a_client_certificate_signed_by_the_ca(mtls_server, pki):
    info = _models(
        mtls_server.target, ca=pki["ca.pem"], cert=pki["client.pem"], key=pki["client.key"],
        token=TOKEN,
    )  # fmt: skip
    assert info.models
    # the token is still required over mTLS
    code = _code(
        lambda: _models(
            mtls_server.target, ca=pki["ca.pem"], cert=pki["client.pem"], key=pki["client.key"]
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_tls_refuses_plaintext_unknown_ca_and_missing_or_foreign_client_cert(mtls_server, pki):
    target = mtls_server.target
    options = {"token": TOKEN}
    assert _code(lambda: _models(target, **options)) == grpc.StatusCode.UNAVAILABLE  # plaintext
    no_cert = {"ca": pki["ca.pem"], **options}
    assert _code(lambda: _models(target, **no_cert)) == grpc.StatusCode.UNAVAILABLE
    foreign = {"ca": pki["ca.pem"], "cert": pki["rogue.pem"], "key": pki["rogue.key"], **options}
    assert _code(lambda: _models(target, **foreign)) == grpc.StatusCode.UNAVAILABLE
    wrong_ca = {"ca": pki["other-ca.pem"], "cert": pki["client.pem"], "key": pki["client.key"]}
    assert _code(lambda: _models(target, **wrong_ca, **options)) == grpc.StatusCode.UNAVAILABLE


def test_tls_without_client_auth(pki, model_store):
    srv = ServerThread(
        analyzer=shared_analyzer(), tls_cert=pki["server.pem"], tls_key=pki["server.key"]
    ).wait_ready()
    try:
        assert _models(srv.target, ca=pki["ca.pem"]).models
        assert _models(f"localhost:{srv.port}", ca=pki["ca.pem"]).models  # name in the SAN
    finally:
        srv.stop()


def test_config_errors_name_the_flag(pki):
    from ahmer.service.grpc.settings import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match="--tls-key / AHMER_TLS_KEY"):
        ServerConfig(tls_cert=pki["server.pem"])
    with pytest.raises(ConfigError, match="--client-ca"):
        ServerConfig(client_ca=pki["ca.pem"])
    with pytest.raises(ConfigError, match="AHMER_PORT"):
        ServerConfig.from_sources(env={"AHMER_PORT": "eighty"})
    config = ServerConfig.from_sources(env={"AHMER_PORT": "6000", "AHMER_MAX_SESSIONS": "3"})
    assert config.port == 6000 and config.max_sessions == 3


def test_face_options_reach_the_analyzer():
    from ahmer.service.grpc.server import build_analyzer
    from ahmer.service.grpc.settings import ConfigError, ServerConfig

    env = {"AHMER_FACE_ENGINE": "tasks", "AHMER_LANDMARK_FPS": "0"}
    analyzer = build_analyzer(ServerConfig.from_sources(env=env))
    assert analyzer.config.face_engine == "tasks" and analyzer.config.landmark_fps == 0
    assert build_analyzer(ServerConfig()).config.face_engine == "litert"
    with pytest.raises(ConfigError, match="AHMER_FACE_ENGINE"):
        ServerConfig.from_sources(env={"AHMER_FACE_ENGINE": "mediapipe"})
    with pytest.raises(ConfigError, match="AHMER_LANDMARK_FPS"):
        ServerConfig.from_sources(env={"AHMER_LANDMARK_FPS": "nan"})
