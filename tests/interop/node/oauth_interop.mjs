// Interop: latchkey as an OAuth 2.0 authorization server, driven from Node by libraries no one
// here wrote, with their defaults. openid-client discovers the tenant's issuer (RFC 8414), runs
// the client credentials grant, introspects as a resource server (its default client
// authentication, client_secret_post, with a root key; and HTTP Basic) and revokes; jose
// verifies the access token through the tenant's JWKS with issuer, audience and `typ` pinned,
// and refuses it for another audience, another issuer or a tampered signature.
//
// Usage: node oauth_interop.mjs PATH_TO_LATCHKEY_BINARY
// Starts its own latchkey on a free port over a temporary SQLite database, once per signing
// algorithm, and stops it at the end. scripts/test installs the pinned packages
// (package-lock.json beside this file) into .cache/interop-node and runs this copy from there.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as client from 'openid-client';
import * as jose from 'jose';

const SECRET_KEY = '7c0a5f1e3b9d2468ace13579bdf02468ace13579bdf02468ace13579bdf0aa01';
// Tries at starting latchkey on a port picked beforehand, which another process may take first.
const START_ATTEMPTS = 5;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The port of latchkey's "latchkey listening" line in its JSON log, undefined before it. */
function listeningPort(logPath) {
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    try {
      const event = JSON.parse(line);
      if (event?.message === 'latchkey listening') return event.port;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

/** A latchkey process of our own, with a bootstrapped tenant. */
class Latchkey {
  constructor(binary, algorithm) {
    this.binary = binary;
    this.dir = mkdtempSync(join(tmpdir(), 'latchkey-interop-node-'));
    this.logPath = join(this.dir, 'server.log');
    this.env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: `sqlite://${this.dir}/latchkey.db`,
      LATCHKEY_SECRET_KEY: SECRET_KEY,
      LATCHKEY_SIGNING_ALGORITHM: algorithm,
      // Warnings, and the startup lines that say which port latchkey listens on.
      RUST_LOG: 'warn,latchkey::startup=info',
      LATCHKEY_LOG_FORMAT: 'json',
    };
  }

  async start() {
    Object.assign(this, this.bootstrap('interop'));
    // The issuer (LATCHKEY_PUBLIC_URL) names the port, so the port is picked before latchkey
    // starts; if another process takes it in between, latchkey exits and starts again.
    for (let i = 0; i < START_ATTEMPTS; i++) {
      if (await this.startOn(await freePort())) return this;
    }
    this.fail(`latchkey could not bind a free port in ${START_ATTEMPTS} tries`);
  }

  /** A new tenant with an owner: its id, its root key's id and its root key. */
  bootstrap(tenant) {
    const out = spawnSync(
      this.binary,
      ['bootstrap', '--tenant', tenant, '--email', `ops@${tenant}.example`, '--json'],
      { env: { ...this.env, RUST_LOG: 'warn' }, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(out.status, 0, `bootstrap failed: ${out.stderr}`);
    const done = JSON.parse(out.stdout.trim().split('\n').at(-1));
    return { tenantId: done.tenant_id, rootKeyId: done.root_key_id, rootKey: done.root_key };
  }

  /** Starts latchkey on `port` and waits for it: false if another process holds the port. */
  async startOn(port) {
    this.url = `http://127.0.0.1:${port}`;
    const log = openSync(this.logPath, 'w');
    this.process = spawn(this.binary, ['serve'], {
      env: { ...this.env, LATCHKEY_BIND: `127.0.0.1:${port}`, LATCHKEY_PUBLIC_URL: this.url },
      stdio: ['ignore', 'ignore', log],
    });
    closeSync(log);
    this.exited = new Promise((resolve) => this.process.once('exit', resolve));
    const deadline = Date.now() + 30_000;
    // Our process logged that it listens on the port: whatever answers there is ours.
    while (listeningPort(this.logPath) !== port) {
      if (this.process.exitCode !== null) {
        if (this.logTail().includes('cannot listen')) return false;
        this.fail('latchkey exited before it listened');
      }
      if (Date.now() > deadline) this.fail('latchkey did not listen within 30 s');
      await sleep(100);
    }
    for (;;) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return true;
      } catch {
        // not answering yet
      }
      if (this.process.exitCode !== null) this.fail('latchkey exited before it answered /healthz');
      if (Date.now() > deadline) this.fail('latchkey did not answer /healthz within 30 s');
      await sleep(100);
    }
  }

  logTail(lines = 20) {
    return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
  }

  fail(message) {
    const tail = this.logTail();
    this.stop();
    throw new Error(`interop: ${message}; its log ends with:\n${tail}`);
  }

  /** A management call with the root key; the JSON answer of a 2xx. */
  async api(method, path, body) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.rootKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
    return response.json();
  }

  async stop() {
    if (this.process && this.process.exitCode === null) {
      this.process.kill('SIGTERM');
      const stopped = await Promise.race([this.exited.then(() => true), sleep(15_000)]);
      if (!stopped) this.process.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Discovery as openid-client does it for an OAuth 2.0 issuer (RFC 8414 path insertion). */
function discover(server, issuer, clientId, clientSecret, clientAuthentication) {
  return client.discovery(new URL(issuer), clientId, clientSecret, clientAuthentication, {
    algorithm: 'oauth2',
    // The test server speaks plain HTTP on the loopback interface.
    execute: [client.allowInsecureRequests],
  });
}

/** `promise` rejects with an error for which `check` holds. */
async function rejects(promise, check, what) {
  try {
    await promise;
  } catch (err) {
    assert.ok(check(err), `${what}: not the expected error: ${err?.name} ${err?.code} ${err?.message}`);
    return err;
  }
  assert.fail(`${what}: did not fail`);
}

async function run(binary, algorithm) {
  const server = await new Latchkey(binary, algorithm).start();
  try {
    const keyspace = await server.api('POST', '/v1/keyspaces', { name: 'interop', prefix: 'interop_live' });
    const key = await server.api('POST', '/v1/keys', {
      keyspace_id: keyspace.id,
      owner_id: 'svc-billing',
      scopes: ['documents:read', 'documents:write'],
    });
    const issuer = `${server.url}/oauth/${server.tenantId}`;
    const audience = `${issuer}/keyspaces/${keyspace.id}`;

    // 1. Discovery: openid-client checks that the metadata's issuer is the one it asked for.
    const config = await discover(server, issuer, key.id, key.key);
    const metadata = config.serverMetadata();
    assert.equal(metadata.issuer, issuer);
    assert.ok(metadata.grant_types_supported.includes('client_credentials'));

    // 2. The client credentials grant, with openid-client's default client authentication
    // (client_secret_post) and a narrowed scope.
    const tokens = await client.clientCredentialsGrant(config, { scope: 'documents:read' });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, 'documents:read');
    assert.ok(tokens.expiresIn() > 0);
    const accessToken = tokens.access_token;

    // 3. jose through the JWKS URL, with issuer, audience, typ and algorithm pinned.
    const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
    const expected = { issuer, audience, typ: 'at+jwt', algorithms: [algorithm] };
    const { payload, protectedHeader } = await jose.jwtVerify(accessToken, jwks, expected);
    assert.equal(protectedHeader.alg, algorithm);
    assert.ok(protectedHeader.kid);
    assert.equal(payload.client_id, key.id);
    assert.equal(payload.sub, 'svc-billing');
    assert.equal(payload.scope, 'documents:read');
    for (const claim of ['exp', 'iat', 'jti']) assert.ok(payload[claim], claim);
    // Another audience, another issuer, another type: each refused alone.
    const claimFailed = (claim) => (err) =>
      err instanceof jose.errors.JWTClaimValidationFailed && err.claim === claim;
    await rejects(
      jose.jwtVerify(accessToken, jwks, { ...expected, audience: `${issuer}/keyspaces/another` }),
      claimFailed('aud'), 'a wrong audience');
    await rejects(
      jose.jwtVerify(accessToken, jwks, { ...expected, issuer: `${server.url}/oauth/another` }),
      claimFailed('iss'), 'a wrong issuer');
    await rejects(
      jose.jwtVerify(accessToken, jwks, { ...expected, typ: 'JWT' }),
      claimFailed('typ'), 'a wrong typ');
    const [head, body, signature] = accessToken.split('.');
    const flipped = signature.at(-2) === 'A' ? 'B' : 'A';
    const tampered = `${head}.${body}.${signature.slice(0, -2)}${flipped}${signature.at(-1)}`;
    await rejects(jose.jwtVerify(tampered, jwks, expected),
      (err) => err instanceof jose.errors.JWSSignatureVerificationFailed, 'a tampered signature');

    // 4. Introspection by a resource server: the root key as client credentials, with
    // openid-client's default (client_secret_post) and with HTTP Basic.
    const resourceServer = await discover(server, issuer, server.rootKeyId, server.rootKey);
    const basicServer = await discover(server, issuer, server.rootKeyId, server.rootKey,
      client.ClientSecretBasic());
    for (const [how, rs] of [['client_secret_post', resourceServer], ['client_secret_basic', basicServer]]) {
      const introspected = await client.tokenIntrospection(rs, accessToken);
      assert.equal(introspected.active, true, how);
      assert.equal(introspected.client_id, key.id, how);
      assert.equal(introspected.token_type, 'Bearer', how);
      assert.equal(introspected.scope, 'documents:read', how);
      assert.equal(introspected.iss, issuer, how);
    }
    // A wrong root key: 401, which openid-client raises with the server's challenge.
    const wrong = await discover(server, issuer, server.rootKeyId,
      'lk_root_wrongwrongwrongwrongwrongwrongwrong');
    await rejects(client.tokenIntrospection(wrong, accessToken),
      (err) => err instanceof client.WWWAuthenticateChallengeError && err.status === 401
        && err.cause.some((challenge) => challenge.scheme === 'basic'),
      'a wrong root key at introspection');

    // 5. Revocation (RFC 7009) of the token by its client; then it is inactive and no longer
    // verifies at latchkey.
    await client.tokenRevocation(config, accessToken, { token_type_hint: 'access_token' });
    const after = await client.tokenIntrospection(resourceServer, accessToken);
    assert.deepEqual(after, { active: false });
    const outcome = await server.api('POST', '/v1/keys/verify', { key: accessToken });
    assert.equal(outcome.code, 'REVOKED');

    // 6. A wrong client secret at the token endpoint: RFC 6749 invalid_client.
    const impostor = await discover(server, issuer, key.id, 'interop_live_wrongwrongwrongwrongwrongwrongwr');
    await rejects(client.clientCredentialsGrant(impostor),
      (err) => (err instanceof client.WWWAuthenticateChallengeError && err.status === 401)
        || err?.error === 'invalid_client',
      'a wrong client secret');
    console.log(`interop node ${algorithm}: openid-client discovery, client credentials, `
      + 'introspection and revocation; jose through the JWKS: ok');
  } finally {
    await server.stop();
  }
}

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node oauth_interop.mjs PATH_TO_LATCHKEY_BINARY');
  process.exit(2);
}
const algorithms = ['EdDSA', 'ES256'];
for (const algorithm of algorithms) await run(binary, algorithm);
console.log(`${algorithms.length} passed, 0 failed`);
