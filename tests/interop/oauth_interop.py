"""Interop: latchkey as an OAuth 2.0 authorization server, driven only by libraries no one here
wrote. authlib runs the client credentials flow (Basic and client_secret_post), introspects as a
resource server with its default client authentication (the root key by HTTP Basic) and revokes;
PyJWT verifies the access token offline through the JWKS URL found in the tenant's metadata
(each tenant is its own issuer), and refuses another tenant's token on the signature, the
issuer and the audience, each check on its own.

Usage: oauth_interop.py PATH_TO_LATCHKEY_BINARY
Starts its own latchkey on a free port over a temporary SQLite database, once per signing
algorithm, and stops it at the end.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session

SECRET_KEY = "7c0a5f1e3b9d2468ace13579bdf02468ace13579bdf02468ace13579bdf0aa01"


# Tries at starting latchkey on a port picked beforehand, which another process may take first.
START_ATTEMPTS = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_port(log_path):
    """The port of latchkey's "latchkey listening" line in its JSON log, None before it."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("message") == "latchkey listening":
                return event.get("port")
    return None


class Latchkey:
    """A latchkey process of our own, with a bootstrapped tenant."""

    def __init__(self, binary, algorithm):
        self.dir = tempfile.TemporaryDirectory()
        self.binary = binary
        self.log_path = os.path.join(self.dir.name, "server.log")
        self.process = None
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite://{self.dir.name}/latchkey.db",
            "LATCHKEY_SECRET_KEY": SECRET_KEY,
            "LATCHKEY_SIGNING_ALGORITHM": algorithm,
            # Warnings, and the startup lines that say which port latchkey listens on.
            "RUST_LOG": "warn,latchkey::startup=info",
            "LATCHKEY_LOG_FORMAT": "json",
        }
        self.tenant_id, self.root_key_id, self.root_key = self.bootstrap("interop")
        # The issuer (LATCHKEY_PUBLIC_URL) names the port, so the port is picked before latchkey
        # starts, not by latchkey binding port 0. Another process may take it in between: then
        # latchkey cannot bind it and exits, and it starts again on another port.
        for _ in range(START_ATTEMPTS):
            if self.start(free_port()):
                return
        self.fail(f"latchkey could not bind a free port in {START_ATTEMPTS} tries")

    def bootstrap(self, tenant):
        """A new tenant with an owner: its id, its root key's id and its root key."""
        out = subprocess.run(
            [self.binary, "bootstrap", "--tenant", tenant, "--email", f"ops@{tenant}.example", "--json"],
            env={**self.env, "RUST_LOG": "warn"}, check=True, capture_output=True, text=True,
            timeout=60,
        )
        done = json.loads(out.stdout.strip().splitlines()[-1])
        return done["tenant_id"], done["root_key_id"], done["root_key"]

    def start(self, port):
        """Starts latchkey on `port` and waits for it: False if another process holds the port."""
        self.url = f"http://127.0.0.1:{port}"
        env = {**self.env, "LATCHKEY_BIND": f"127.0.0.1:{port}", "LATCHKEY_PUBLIC_URL": self.url}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + 30
        # Our process logged that it listens on the port: whatever answers there is ours.
        while listening_port(self.log_path) != port:
            if self.process.poll() is not None:
                if "cannot listen" in self.log_tail():
                    return False
                self.fail("latchkey exited before it listened")
            if time.monotonic() > deadline:
                self.fail("latchkey did not listen within 30 s")
            time.sleep(0.1)
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return True
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                self.fail("latchkey exited before it answered /healthz")
            if time.monotonic() > deadline:
                self.fail("latchkey did not answer /healthz within 30 s")
            time.sleep(0.1)

    def log_tail(self, lines=20):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def fail(self, message):
        tail = self.log_tail()
        self.stop()
        raise SystemExit(f"interop: {message}; its log ends with:\n{tail}")

    def api(self, method, path, root_key=None, **kwargs):
        response = requests.request(
            method, f"{self.url}{path}",
            headers={"Authorization": f"Bearer {root_key or self.root_key}"}, timeout=10, **kwargs,
        )
        response.raise_for_status()
        return response.json()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.dir.cleanup()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(binary, algorithm):
    server = Latchkey(binary, algorithm)
    try:
        keyspace = server.api("POST", "/v1/keyspaces", json={"name": "interop", "prefix": "interop_live"})
        key = server.api("POST", "/v1/keys", json={
            "keyspace_id": keyspace["id"], "owner_id": "svc-billing",
            "scopes": ["documents:read", "documents:write"],
        })

        # RFC 8414 §3.1: the tenant's metadata by path insertion, and the same below its issuer.
        issuer = f"{server.url}/oauth/{server.tenant_id}"
        metadata = requests.get(
            f"{server.url}/.well-known/oauth-authorization-server/oauth/{server.tenant_id}", timeout=10,
        ).json()
        check(metadata["issuer"] == issuer, metadata)
        below = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
        check(below == metadata, below)
        check("client_credentials" in metadata["grant_types_supported"], metadata)
        audience = f"{issuer}/keyspaces/{keyspace['id']}"

        # 1. authlib, client_secret_basic (its default), a narrowed scope.
        session = OAuth2Session(key["id"], key["key"], scope="documents:read")
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        check(token["token_type"] == "Bearer", token)
        check(token["scope"] == "documents:read", token)
        access_token = token["access_token"]

        # 2. PyJWT verifies offline through the JWKS URL.
        jwks = jwt.PyJWKClient(metadata["jwks_uri"])
        signing_key = jwks.get_signing_key_from_jwt(access_token)
        claims = jwt.decode(
            access_token, signing_key.key, algorithms=[algorithm],
            audience=audience, issuer=metadata["issuer"],
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
        header = jwt.get_unverified_header(access_token)
        check(header["typ"] == "at+jwt" and header["alg"] == algorithm, header)
        check(claims["client_id"] == key["id"] and claims["sub"] == "svc-billing", claims)
        check(claims["scope"] == "documents:read", claims)

        # A token tampered with does not verify.
        head, body, sig = access_token.split(".")
        forged = ".".join([head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig])
        try:
            jwt.decode(forged, signing_key.key, algorithms=[algorithm], audience=audience)
            raise AssertionError("a tampered token verified")
        except jwt.InvalidTokenError:
            pass

        # 3. The same token through latchkey: verify and introspect.
        outcome = server.api("POST", "/v1/keys/verify", json={"key": access_token, "scopes": ["documents:read"]})
        check(outcome["code"] == "VALID", outcome)
        introspected = requests.post(
            metadata["introspection_endpoint"], data={"token": access_token},
            headers={"Authorization": f"Bearer {server.root_key}"}, timeout=10,
        ).json()
        check(introspected["active"] is True and introspected["client_id"] == key["id"], introspected)
        # authlib as a resource server, with its default client authentication: the root key's
        # id and the root key by HTTP Basic.
        resource_server = OAuth2Session(server.root_key_id, server.root_key)
        response = resource_server.introspect_token(metadata["introspection_endpoint"], token=access_token)
        check(response.status_code == 200, response.text)
        check(response.json() == introspected, response.json())
        # A wrong root key: RFC 6749 §5.2 invalid_client, challenged for Basic.
        wrong = OAuth2Session(server.root_key_id, "lk_root_wrongwrongwrongwrongwrongwrongwrong")
        response = wrong.introspect_token(metadata["introspection_endpoint"], token=access_token)
        check(response.status_code == 401 and response.json()["error"] == "invalid_client", response.text)
        check(response.headers["WWW-Authenticate"].startswith("Basic "), response.headers)
        # A wrong bearer: RFC 6750 invalid_token.
        response = requests.post(
            metadata["introspection_endpoint"], data={"token": access_token},
            headers={"Authorization": "Bearer lk_root_wrongwrongwrongwrongwrongwrongwrong"}, timeout=10,
        )
        check(response.status_code == 401 and response.json()["error"] == "invalid_token", response.text)
        check('error="invalid_token"' in response.headers["WWW-Authenticate"], response.headers)

        # 4. authlib, client_secret_post, then RFC 7009 revocation through authlib.
        post_session = OAuth2Session(
            key["id"], key["key"], token_endpoint_auth_method="client_secret_post",
            revocation_endpoint_auth_method="client_secret_post",
        )
        second = post_session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        check(second["scope"] == "documents:read documents:write", second)
        revoked = post_session.revoke_token(
            metadata["revocation_endpoint"], token=second["access_token"], token_type_hint="access_token",
        )
        check(revoked.status_code == 200, revoked.text)
        outcome = server.api("POST", "/v1/keys/verify", json={"key": second["access_token"]})
        check(outcome["code"] == "REVOKED", outcome)
        introspected = resource_server.introspect_token(
            metadata["introspection_endpoint"], token=second["access_token"],
        ).json()
        check(introspected == {"active": False}, introspected)

        # 5. A wrong secret is an RFC 6749 invalid_client that authlib raises.
        bad = OAuth2Session(key["id"], "interop_live_wrongwrongwrongwrongwrongwrongwr")
        try:
            bad.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
            raise AssertionError("a wrong secret got a token")
        except Exception as err:  # authlib's OAuthError
            check(getattr(err, "error", None) == "invalid_client", repr(err))
        # 6. Another tenant's token, checked by a verifier pinned to this tenant's metadata.
        check_other_tenant_refused(server, algorithm, metadata, audience)
        print(
            f"interop {algorithm}: authlib client credentials, introspection and revocation, PyJWT "
            "via the tenant's JWKS, another tenant's token refused: ok"
        )
    finally:
        server.stop()


def check_other_tenant_refused(server, algorithm, metadata, audience):
    """Tenant B mints a token for itself; tenant A's verifier refuses it on every check alone."""
    other_id, _, other_root = server.bootstrap("intruder")
    other_space = server.api("POST", "/v1/keyspaces", root_key=other_root,
                             json={"name": "intruder", "prefix": "intruder_live"})
    other_key = server.api("POST", "/v1/keys", root_key=other_root, json={
        "keyspace_id": other_space["id"], "owner_id": "svc-billing", "scopes": ["documents:read"],
    })
    # Through the deployment-wide alias, as a client that never looked at the metadata would.
    other = OAuth2Session(other_key["id"], other_key["key"])
    theirs = other.fetch_token(f"{server.url}/oauth/token", grant_type="client_credentials")["access_token"]
    check(jwt.decode(theirs, options={"verify_signature": False})["iss"] == f"{server.url}/oauth/{other_id}",
          "the alias issues the tenant's own issuer")

    # Signature: its kid is not in A's JWKS, and none of A's keys verifies it.
    ours = jwt.PyJWKClient(metadata["jwks_uri"])
    try:
        ours.get_signing_key_from_jwt(theirs)
        raise AssertionError("another tenant's kid is in this tenant's JWKS")
    except jwt.PyJWKClientError:
        pass
    for key in ours.get_signing_keys():
        try:
            jwt.decode(theirs, key.key, algorithms=[algorithm], options={"verify_aud": False, "verify_iss": False})
            raise AssertionError("this tenant's key verifies another tenant's token")
        except jwt.InvalidSignatureError:
            pass
    # Issuer and audience, each alone, even verified with the key that did sign it.
    their_key = jwt.PyJWKClient(f"{server.url}/oauth/{other_id}/jwks.json").get_signing_key_from_jwt(theirs)
    try:
        jwt.decode(theirs, their_key.key, algorithms=[algorithm], issuer=metadata["issuer"],
                   options={"verify_aud": False})
        raise AssertionError("another tenant's token passed the issuer check")
    except jwt.InvalidIssuerError:
        pass
    try:
        jwt.decode(theirs, their_key.key, algorithms=[algorithm], audience=audience,
                   options={"verify_iss": False})
        raise AssertionError("another tenant's token passed the audience check")
    except jwt.InvalidAudienceError:
        pass
    # And latchkey itself, asked by tenant A, knows nothing of it.
    outcome = server.api("POST", "/v1/keys/verify", json={"key": theirs})
    check(outcome["code"] == "NOT_FOUND", outcome)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for algorithm in ["EdDSA", "ES256"]:
        run(sys.argv[1], algorithm)
    print("2 passed, 0 failed")


if __name__ == "__main__":
    main()
