"""Interop: latchkey as an OAuth 2.0 authorization server, driven only by libraries no one here
wrote. authlib runs the client credentials flow (Basic and client_secret_post) and revokes;
PyJWT verifies the access token offline through the JWKS URL found in the server metadata.

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
        out = subprocess.run(
            [binary, "bootstrap", "--tenant", "interop", "--email", "ops@interop.example", "--json"],
            env={**self.env, "RUST_LOG": "warn"}, check=True, capture_output=True, text=True,
            timeout=60,
        )
        self.root_key = json.loads(out.stdout.strip().splitlines()[-1])["root_key"]
        # The issuer (LATCHKEY_PUBLIC_URL) names the port, so the port is picked before latchkey
        # starts, not by latchkey binding port 0. Another process may take it in between: then
        # latchkey cannot bind it and exits, and it starts again on another port.
        for _ in range(START_ATTEMPTS):
            if self.start(free_port()):
                return
        self.fail(f"latchkey could not bind a free port in {START_ATTEMPTS} tries")

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

    def api(self, method, path, **kwargs):
        response = requests.request(
            method, f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self.root_key}"}, timeout=10, **kwargs,
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

        metadata = requests.get(f"{server.url}/.well-known/oauth-authorization-server", timeout=10).json()
        check(metadata["issuer"] == server.url, metadata)
        check("client_credentials" in metadata["grant_types_supported"], metadata)

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
            audience=metadata["issuer"], issuer=metadata["issuer"],
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
            jwt.decode(forged, signing_key.key, algorithms=[algorithm], audience=metadata["issuer"])
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
        introspected = requests.post(
            metadata["introspection_endpoint"], data={"token": second["access_token"]},
            headers={"Authorization": f"Bearer {server.root_key}"}, timeout=10,
        ).json()
        check(introspected == {"active": False}, introspected)

        # 5. A wrong secret is an RFC 6749 invalid_client that authlib raises.
        bad = OAuth2Session(key["id"], "interop_live_wrongwrongwrongwrongwrongwrongwr")
        try:
            bad.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
            raise AssertionError("a wrong secret got a token")
        except Exception as err:  # authlib's OAuthError
            check(getattr(err, "error", None) == "invalid_client", repr(err))
        print(f"interop {algorithm}: authlib client credentials, PyJWT via JWKS, revocation: ok")
    finally:
        server.stop()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for algorithm in ["EdDSA", "ES256"]:
        run(sys.argv[1], algorithm)
    print("2 passed, 0 failed")


if __name__ == "__main__":
    main()
