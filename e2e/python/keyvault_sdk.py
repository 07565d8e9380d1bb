"""The unmodified Azure SDK for Python against vaultwall behind a real Envoy.

e2e/python_sdk_test.go starts the system (Envoy front, vaultwall, fake vault,
OIDC issuer, a loopback token endpoint) and runs

    $VAULTWALL_PYTHON e2e/python/keyvault_sdk.py <config.json>

The clients are the pinned azure-keyvault-secrets, -keys and -certificates,
used as an application would use them, with three test seams that leave the
SDK's own behaviour intact:

- the vault URL stays https://<vault>.vault.azure.net (port 443); only the TCP
  connection goes to the front's loopback port, opened with the PROXY v2
  header the L4 load balancer in front of Envoy would send (the client's
  address), then TLS to the vault's host name, verified against the test CAs.
  The challenge-resource check stays on.
- a TokenCredential (get_token and get_token_info) that asks the Go test's
  token endpoint for the issuer's tokens, and records each request.
- a transport that records each exchange on the wire (below the SDK's
  policies: the challenge's token-less request is one of them) and gives it
  a fresh x-ms-client-request-id, by which the Go test finds it at the vault.

Each scenario asserts what the SDK did, and prints one JSON line on stdout:
{"scenario", "ok", "error", "exchanges", "tokens", "refusals", "results"}.
The Go test checks the lines again and what reached the vault. The exit
status is 1 when a scenario failed. Tokens are never printed. A "scenarios"
list in the configuration runs only those (for debugging by hand).
"""

import hashlib
import ipaddress
import json
import struct
import sys
import time
import traceback
import urllib.parse
import urllib.request
import uuid

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import NewConnectionError
from urllib3.util import Retry
from urllib3.util.connection import create_connection

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.x509.oid import NameOID

KEY_VAULT_SCOPE = "https://vault.azure.net/.default"

# --- the network: PROXY v2 then TLS to the vault's name, on the front's port --

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(source, source_port, front_port):
    """A PROXY protocol v2 header (command PROXY, TCP) claiming source.

    The destination is the front on loopback, in the source's family.
    """
    src = ipaddress.ip_address(source)
    if src.version == 4:
        dst = ipaddress.ip_address("127.0.0.1")
        family, addrs = 0x11, src.packed + dst.packed
    else:
        dst = ipaddress.ip_address("::1")
        family, addrs = 0x21, src.packed + dst.packed
    body = addrs + struct.pack("!HH", source_port, front_port)
    return PROXY_V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


def front_connection(routes, source):
    """An HTTPSConnection class whose TCP connection goes to the front.

    routes maps "host:port" as the SDK's URL names it to (ip, port) on
    loopback; anything else fails, so nothing leaves the machine. The TLS
    handshake that follows is urllib3's own: SNI and certificate check on
    the URL's host.
    """

    class FrontHTTPSConnection(HTTPSConnection):
        def _new_conn(self):
            target = routes.get(f"{self.host}:{self.port}")
            if target is None:
                raise NewConnectionError(self, f"no route to {self.host}:{self.port} in this test")
            try:
                sock = create_connection(target, self.timeout, socket_options=self.socket_options)
            except OSError as e:
                raise NewConnectionError(self, f"front {target}: {e}") from e
            sock.sendall(proxy_v2_header(source, 50000, target[1]))
            return sock

    return FrontHTTPSConnection


class NoRouteHTTPConnection(HTTPConnection):
    """Plain HTTP goes nowhere in this test."""

    def _new_conn(self):
        raise NewConnectionError(self, f"no route to http://{self.host}:{self.port} in this test")


class FrontAdapter(HTTPAdapter):
    """A requests adapter whose HTTPS pools dial the front (plain HTTP fails)."""

    def __init__(self, routes, source, **kwargs):
        conn_cls = front_connection(routes, source)
        self._pool_classes = {
            "http": type("NoRouteHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": NoRouteHTTPConnection}),
            "https": type("FrontHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": conn_cls}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pool_classes)


class RecordingTransport(RequestsTransport):
    """azure-core's requests transport, recording every exchange."""

    def __init__(self, log, client, **kwargs):
        super().__init__(**kwargs)
        self._log = log
        self._client = client

    def send(self, request, **kwargs):
        # azure-core's RequestIdPolicy sets one id per call, and the challenge
        # flow resends the call with the same id: a fresh one per exchange
        # lets the Go test tell at the vault which of the two got there.
        sdk_request_id = request.headers.get("x-ms-client-request-id", "")
        request_id = str(uuid.uuid4())
        request.headers["x-ms-client-request-id"] = request_id
        body = getattr(request, "content", None)
        if body is None:
            body = getattr(request, "body", None)
        length = len(body) if isinstance(body, (bytes, bytearray, str)) else 0
        parsed = urllib.parse.urlsplit(request.url)
        entry = {
            "client": self._client,
            "method": request.method,
            "host": parsed.netloc,
            "path": parsed.path + ("?" + parsed.query if parsed.query else ""),
            "auth": "Authorization" in request.headers,
            "content_length": length,
            "request_id": request_id,
            "sdk_request_id": sdk_request_id,
        }
        try:
            response = super().send(request, **kwargs)
        except Exception as e:
            entry["transport_error"] = f"{type(e).__name__}: {e}"
            self._log.append(entry)
            raise
        entry["status"] = response.status_code
        entry["challenge"] = response.headers.get("WWW-Authenticate", "")
        entry["error_code"] = response.headers.get("x-ms-error-code", "")
        self._log.append(entry)
        return response


class Network:
    """How one scenario's clients reach the vaults."""

    def __init__(self, config, log):
        self._log = log
        self._ca = config["ca_file"]
        self._routes = {}
        for v in config["vaults"].values():
            host = urllib.parse.urlsplit(v["url"]).hostname
            ip, port = v["front"].rsplit(":", 1)
            self._routes[f"{host}:443"] = (ip.strip("[]"), int(port))

    def transport(self, source, client):
        """A transport for a client at source (the PROXY header's address)."""
        session = requests.Session()
        session.trust_env = False  # no proxies or CA bundles from the environment
        adapter = FrontAdapter(self._routes, source, max_retries=Retry(total=False, redirect=False, raise_on_status=False))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return RecordingTransport(
            self._log,
            client,
            session=session,
            connection_verify=self._ca,
            use_env_settings=False,
        )


# --- the credential -------------------------------------------------------------


class IssuerCredential:
    """A TokenCredential handing out the test issuer's tokens for principal.

    It asks the Go test's token endpoint, which mints with the issuer of the
    named vault's system for the scope and tenant the SDK asks for. modes
    shape the tokens in turn, the last one repeating: "" a valid token,
    "expiring" one vaultwall accepts for a moment although it is reported
    valid for an hour, "audience" one for another audience.
    """

    def __init__(self, token_url, vault, principal, log, modes=("",)):
        self._url = token_url
        self._vault = vault
        self._principal = principal
        self._log = log
        self._modes = list(modes)
        self._count = 0
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.last = None  # the endpoint's answer, without the token

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        t = self._fetch("get_token", scopes, tenant_id, claims, enable_cae)
        return AccessToken(t["access_token"], t["expires_on"])

    def get_token_info(self, *scopes, options=None):
        options = options or {}
        t = self._fetch("get_token_info", scopes, options.get("tenant_id"), options.get("claims"), options.get("enable_cae", False))
        return AccessTokenInfo(t["access_token"], t["expires_on"])

    def _fetch(self, method, scopes, tenant_id, claims, enable_cae):
        mode = self._modes[min(self._count, len(self._modes) - 1)]
        self._count += 1
        self._log.append(
            {"vault": self._vault, "principal": self._principal, "method": method, "scopes": list(scopes), "tenant": tenant_id or "",
             "claims": claims or "", "enable_cae": bool(enable_cae), "mode": mode}
        )
        q = urllib.parse.urlencode({"vault": self._vault, "principal": self._principal, "scope": " ".join(scopes), "tenant": tenant_id or "", "mode": mode})
        with self._opener.open(self._url + "?" + q, timeout=10) as resp:
            t = json.load(resp)
        self.last = {k: v for k, v in t.items() if k != "access_token"}
        return t


# --- scenarios ------------------------------------------------------------------


class Scenario:
    """One scenario's record, printed as a JSON line."""

    def __init__(self, name, config):
        self.name = name
        self.config = config
        self.exchanges = []
        self.tokens = []
        self.refusals = []
        self.results = {}
        self.net = Network(config, self.exchanges)

    def vault(self, which="main"):
        return self.config["vaults"][which]["url"]

    def credential(self, principal, modes=("",), vault="main"):
        return IssuerCredential(self.config["token_url"], vault, principal, self.tokens, modes)

    def options(self, source, client):
        return {"transport": self.net.transport(source, client), "retry_total": 0}

    def refused(self, label, call, status, inner, exc=HttpResponseError):
        """Runs call, which must raise exc with Key Vault's status and codes."""
        try:
            call()
        except HttpResponseError as e:
            err = e.error
            rec = {
                "call": label,
                "exception": type(e).__name__,
                "status": e.status_code,
                "code": err.code if err else "",
                "inner": (err.innererror or {}).get("code", "") if err else "",
                "message": err.message if err else "",
                "x_ms_error_code": e.response.headers.get("x-ms-error-code", "") if e.response is not None else "",
            }
            self.refusals.append(rec)
            assert isinstance(e, exc), f"{label}: {type(e).__name__}, want {exc.__name__}"
            want_code = "Unauthorized" if status == 401 else "Forbidden"
            assert (rec["status"], rec["code"], rec["inner"]) == (status, want_code, inner), (
                f"{label}: status {rec['status']} error.code {rec['code']!r} innererror.code {rec['inner']!r}; "
                f"want {status} {want_code!r} {inner!r}"
            )
            assert rec["x_ms_error_code"] == (inner or want_code), f"{label}: x-ms-error-code {rec['x_ms_error_code']!r}"
            return
        raise AssertionError(f"{label}: no error, want {status} {inner}")

    def wire(self, client=None):
        return [e for e in self.exchanges if client is None or e["client"] == client]

    def report(self, ok, error=""):
        line = {"scenario": self.name, "ok": ok, "error": error, "exchanges": self.exchanges,
                "tokens": self.tokens, "refusals": self.refusals, "results": self.results}
        print(json.dumps(line), flush=True)


def want_token_requests(sc, n, principal=None):
    toks = [t for t in sc.tokens if principal is None or t["principal"] == principal]
    assert len(toks) == n, f"{len(toks)} token requests, want {n}: {toks}"
    for t in toks:
        assert t["scopes"] == [KEY_VAULT_SCOPE] and t["tenant"] == sc.config["tenant"], (
            f"token request {t}; want scope {KEY_VAULT_SCOPE} in tenant {sc.config['tenant']}"
        )


def want_challenge_first(sc, ex, method):
    """The first exchange went out without token or body and met the 401."""
    first = ex[0]
    assert (first["method"], first["auth"], first["content_length"], first["status"]) == (method, False, 0, 401), (
        f"first exchange {first}; want a token-less, body-less {method} answered 401"
    )
    assert first["challenge"] == sc.config["challenge"], f"challenge {first['challenge']!r}"
    second = ex[1]
    assert (second["method"], second["auth"], second["status"]) == (method, True, 200), f"second exchange {second}"


def challenge_secrets(sc):
    """The 401 challenge, then set, get and list (two pages) secrets."""
    cred = sc.credential("app")
    client = SecretClient(sc.vault(), cred, **sc.options("203.0.113.10", "app"))
    names = ["py-db-password", "py-api-key", "py-tls-pass"]
    for n in names:
        client.set_secret(n, "value of " + n)
    got = client.get_secret("py-api-key")
    assert got.value == "value of py-api-key", got.value
    assert got.id == f"{sc.vault()}/secrets/py-api-key/{got.properties.version}", got.id
    pages = [[p.name for p in page] for page in client.list_properties_of_secrets().by_page()]
    listed = [n for page in pages for n in page]
    want = sorted(names + sc.config["preexisting_secrets"])
    assert sorted(listed) == want, f"listed {listed}, want {want}"
    assert len(pages) >= 2, f"{len(pages)} page(s): the listing never followed a nextLink"
    ex = sc.wire()
    want_challenge_first(sc, ex, "PUT")
    assert ex[1]["content_length"] > 0, "the retried PUT has no body"
    want_token_requests(sc, 1)
    list_calls = [e for e in ex if e["method"] == "GET" and e["path"].startswith("/secrets?")]
    assert len(list_calls) == len(pages) and "skiptoken" in list_calls[-1]["path"], list_calls
    sc.results = {"listed": listed, "pages": len(pages), "version": got.properties.version}


def keys_crypto(sc):
    """Create a key; wrap/unwrap and sign/verify with CryptographyClient.

    The app (keys get among its permissions) gets the key through the
    KeyClient's CryptographyClient, which then wraps and verifies locally with
    the public key and unwraps and signs at the vault. A least-privilege
    principal without keys/get is refused the key (403, which the SDK
    remembers) and does all four at the vault.
    """
    cred = sc.credential("app")
    kc = KeyClient(sc.vault(), cred, **sc.options("2001:db8:1::10", "app"))
    key = kc.create_rsa_key("py-kek", size=2048)
    assert key.name == "py-kek" and key.key_type == "RSA", key
    crypto = kc.get_cryptography_client("py-kek")
    data_key = b"a data key for py"
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == data_key
    digest = hashlib.sha256(b"sign me").digest()
    signed = crypto.sign(SignatureAlgorithm.rs256, digest)
    assert crypto.verify(SignatureAlgorithm.rs256, digest, signed.signature).is_valid
    assert not crypto.verify(SignatureAlgorithm.rs256, hashlib.sha256(b"not me").digest(), signed.signature).is_valid

    remote = CryptographyClient(key.id, sc.credential("crypto-user"), **sc.options("2001:db8:1::10", "crypto-user"))
    wrapped = remote.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key)
    assert remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == data_key
    signed = remote.sign(SignatureAlgorithm.rs256, digest)
    assert remote.verify(SignatureAlgorithm.rs256, digest, signed.signature).is_valid
    assert not remote.verify(SignatureAlgorithm.rs256, hashlib.sha256(b"not me").digest(), signed.signature).is_valid

    # Each SDK package keeps its own challenge cache: the keys client meets
    # the vault's challenge once more; the crypto-user's client reuses it.
    want_challenge_first(sc, sc.wire("app"), "POST")
    want_token_requests(sc, 1, "app")
    want_token_requests(sc, 1, "crypto-user")
    get = sc.wire("crypto-user")[0]
    assert (get["method"], get["status"], get["error_code"]) == ("GET", 403, "AccessDenied"), f"first crypto-user exchange {get}"
    sc.results = {"key_id": key.id}


def certificates(sc):
    """Get a certificate (with its policy) and check it is the vault's."""
    want = sc.config["certificate"]
    client = CertificateClient(sc.vault(), sc.credential("app"), **sc.options("203.0.113.10", "app"))
    cert = client.get_certificate(want["name"])
    assert cert.name == want["name"], cert.name
    parsed = x509.load_der_x509_certificate(bytes(cert.cer))
    cn = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == want["common_name"], cn
    assert hashlib.sha1(bytes(cert.cer)).hexdigest() == want["sha1"], "another certificate"
    assert cert.properties.x509_thumbprint.hex() == want["sha1"], cert.properties.x509_thumbprint.hex()
    assert cert.policy is not None and cert.policy.issuer_name == "Self", cert.policy
    assert cert.secret_id == f"{sc.vault()}/secrets/{want['name']}/{cert.properties.version}", cert.secret_id
    want_challenge_first(sc, sc.wire(), "GET")
    want_token_requests(sc, 1)
    sc.results = {"common_name": cn, "version": cert.properties.version}


def refusals(sc):
    """Key Vault's refusals surface as HttpResponseError with its codes."""
    outside = "8.8.8.8"
    secrets = SecretClient(sc.vault(), sc.credential("app"), **sc.options(outside, "app-outside"))
    sc.refused("get_secret from outside the rules", lambda: secrets.get_secret("py-db-password"), 403, "ForbiddenByFirewall")
    keys = KeyClient(sc.vault(), sc.credential("app"), **sc.options(outside, "app-outside-keys"))
    sc.refused("get_key from outside the rules", lambda: keys.get_key("py-kek"), 403, "ForbiddenByFirewall")
    crypto = CryptographyClient(f"{sc.vault()}/keys/py-kek", sc.credential("crypto-user"), **sc.options(outside, "crypto-outside"))
    sc.refused("unwrap_key from outside the rules", lambda: crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\x00" * 256), 403, "ForbiddenByFirewall")

    read_only = SecretClient(sc.vault(), sc.credential("read-only"), **sc.options("203.0.113.10", "read-only"))
    sc.refused("set_secret without secrets/set", lambda: read_only.set_secret("py-db-password", "changed"), 403, "AccessDenied")
    assert read_only.get_secret("py-db-password").value == "value of py-db-password"

    # A token for another audience: the SDK asks again after the 401, gets
    # the same kind of token, and surfaces the second 401.
    wrong = SecretClient(sc.vault(), sc.credential("app", ["audience"]), **sc.options("203.0.113.10", "wrong-audience"))
    sc.refused("get_secret with another audience's token", lambda: wrong.get_secret("py-db-password"), 401, "", ClientAuthenticationError)


def token_expiry(sc):
    """A token that expires mid-session: vaultwall's 401, a new token, on."""
    cred = sc.credential("app", ["expiring", ""])
    client = SecretClient(sc.vault(), cred, **sc.options("203.0.113.10", "app"))
    assert client.get_secret("py-db-password").value == "value of py-db-password"
    # The credential said an hour; vaultwall stops accepting the token at
    # valid_until (its exp plus the allowed clock skew).
    time.sleep(max(0.0, cred.last["valid_until"] - time.time()) + 0.3)
    assert client.get_secret("py-api-key").value == "value of py-api-key"
    ex = sc.wire()
    if ex and not ex[0]["auth"] and ex[0]["status"] == 401:
        # The secrets client's challenge cache was empty (run alone, or after
        # a refusal that evicted it): discovery first.
        ex = ex[1:]
    got = [(e["method"], e["auth"], e["status"]) for e in ex]
    assert got == [("GET", True, 200), ("GET", True, 401), ("GET", True, 200)], f"exchanges {got}"
    assert ex[1]["challenge"] == sc.config["challenge"], f"challenge {ex[1]['challenge']!r}"
    want_token_requests(sc, 2)
    assert [t["mode"] for t in sc.tokens] == ["expiring", ""], sc.tokens


def rbac(sc):
    """An RBAC vault: its own challenge, ForbiddenByRbac, the firewall first."""
    want = sc.config["rbac"]
    client = SecretClient(sc.vault("rbac"), sc.credential("app", vault="rbac"), **sc.options("203.0.113.10", "app"))
    assert client.get_secret(want["secret"]).value == want["value"]
    want_challenge_first(sc, sc.wire(), "GET")
    sc.refused("get_secret out of the assignment's scope", lambda: client.get_secret(want["other"]), 403, "ForbiddenByRbac")
    sc.refused("set_secret with Key Vault Secrets User", lambda: client.set_secret(want["secret"], "changed"), 403, "ForbiddenByRbac")
    outside = SecretClient(sc.vault("rbac"), sc.credential("app", vault="rbac"), **sc.options("8.8.8.8", "app-outside"))
    sc.refused("get_secret from outside the rules", lambda: outside.get_secret(want["secret"]), 403, "ForbiddenByFirewall")
    want_token_requests(sc, 2)


# In this order: challenge_secrets meets the main vault's first challenge and
# lists before others add secrets; the rest use what it created. Each SDK
# package caches challenges per host, process-wide, and evicts a host's after
# a second 401 in a row (refusals' other-audience token): token_expiry comes
# before, so its client starts with the cached challenge, as a long-running
# application's would.
SCENARIOS = [challenge_secrets, keys_crypto, certificates, token_expiry, refusals, rbac]


def main(argv):
    with open(argv[1]) as f:
        config = json.load(f)
    only = set(config.get("scenarios") or [])
    failed = False
    for fn in SCENARIOS:
        if only and fn.__name__ not in only:
            continue
        sc = Scenario(fn.__name__, config)
        try:
            fn(sc)
        except Exception:  # report every failure, then go on with the next scenario
            failed = True
            sc.report(False, traceback.format_exc())
        else:
            sc.report(True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
