#!/usr/bin/env python3
"""Callgrind instructions per request for /healthz and warm POST /v1/keys/verify.

usage: bench/callgrind.py NAME BIN   (one round: fresh database + Redis + node under callgrind)
Prints one JSON line: {"name", "healthz", "verify"} (Ir / 2,000 per load).
Method as in docs/BENCHMARKS.md (2026-12-01): LATCHKEY_WORKERS=1, one keyspace and one key
through the API, one keep-alive connection, 500 warm-up requests, callgrind_control -z,
exactly 2,000 requests, callgrind_control -d, Ir of the dump / 2,000; every answer checked.
"""
import glob, json, os, re, secrets, socket, subprocess, sys, tempfile, time, urllib.request

NAME, BIN = sys.argv[1], sys.argv[2]
PG = "postgres://postgres@127.0.0.1:5432"
DB = f"latchkey_cg_{NAME}"
REDIS_PORT = 6417
NODE_PORT = 18417
WARM, N = 500, 2000
work = tempfile.mkdtemp(prefix=f"lkcg-{NAME}-")
procs = []


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def http(method, path, body=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{NODE_PORT}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


class Conn:
    """One keep-alive connection sending raw bytes (what wrk sends), one request at a time."""

    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", NODE_PORT))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def roundtrip(self, raw):
        self.s.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        assert m, head  # no chunked answers expected
        n = int(m.group(1))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, body

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        self.buf += d


def cg(flag, pid):
    sh("callgrind_control", flag, str(pid))


def measure(pid, raw, check):
    c = Conn()
    for _ in range(WARM):
        check(*c.roundtrip(raw))
    before = set(glob.glob(f"{work}/callgrind.out.*"))
    cg("-z", pid)
    for _ in range(N):
        check(*c.roundtrip(raw))
    cg("-d", pid)
    for _ in range(100):
        new = set(glob.glob(f"{work}/callgrind.out.*")) - before
        if new:
            break
        time.sleep(0.1)
    assert len(new) == 1, new
    path = new.pop()
    for _ in range(100):
        text = open(path).read()
        m = re.search(r"^summary:\s+(\d+)", text, re.M)
        t = re.search(r"^totals:\s+(\d+)", text, re.M)
        if m and t:
            break
        time.sleep(0.1)
    c.s.close()
    return int(m.group(1)) / N, int(t.group(1)) / N, path


def main():
    sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", "-c", f"CREATE DATABASE {DB}")
    redis = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", work],
                             stdout=open(f"{work}/redis.log", "w"), stderr=subprocess.STDOUT)
    procs.append(redis)
    time.sleep(0.5)
    env = dict(os.environ, DATABASE_URL=f"{PG}/{DB}", REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}",
               LATCHKEY_SECRET_KEY=secrets.token_hex(32), LATCHKEY_BIND=f"127.0.0.1:{NODE_PORT}",
               LATCHKEY_WORKERS="1", LATCHKEY_MANAGEMENT_RATE_LIMIT="1000000",
               LATCHKEY_LOG_FORMAT="json", RUST_LOG="warn",
               # Valgrind runs the node some 50 x slower: at the 50 ms default a Redis answer
               # times out, the breaker opens and every verify reads the store. The code path
               # measured is the one a healthy node takes.
               LATCHKEY_REDIS_TIMEOUT_MS="5000")
    out = sh(BIN, "bootstrap", "--tenant", "bench", "--email", "b@example.com", "--json", env=env)
    root = json.loads(out.strip().splitlines()[-1])["root_key"]
    node = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/callgrind.out.%p",
                             BIN, "serve"], env=env, stdout=open(f"{work}/node.log", "w"),
                            stderr=subprocess.STDOUT)
    procs.append(node)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{NODE_PORT}/readyz", timeout=5) as r:
                if b"ready" in r.read():
                    break
        except Exception:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("node not ready")
    ks = http("POST", "/v1/keyspaces", {"name": "b", "prefix": "bench_live"}, root)["id"]
    key = http("POST", "/v1/keys", {"keyspace_id": ks}, root)["key"]

    host = f"Host: 127.0.0.1:{NODE_PORT}\r\n".encode()
    healthz = b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n"
    body = json.dumps({"key": key}, separators=(",", ":")).encode()
    verify = (b"POST /v1/keys/verify HTTP/1.1\r\n" + host +
              f"Authorization: Bearer {root}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def ok(status, body):
        assert status == 200, (status, body)

    def valid(status, body):
        assert status == 200 and json.loads(body)["valid"] is True, (status, body)

    h, ht, hp = measure(node.pid, healthz, ok)
    v, vt, vp = measure(node.pid, verify, valid)
    print(json.dumps({"name": NAME, "bin": BIN, "healthz": h, "verify": v, "healthz_totals": ht,
                      "verify_totals": vt, "dumps": [hp, vp], "work": work}), flush=True)


try:
    main()
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"])
