#!/usr/bin/env python3
"""Revocation propagation between two nodes (bench only).

For each key: verify on node B until it is cached VALID, revoke it through node A, then poll
node B until it answers REVOKED. Reports the time from A's revoke answer to B's first REVOKED.
usage: propagation.py A_PORT B_PORT ROOT_KEY KEYS_FILE OFFSET COUNT
"""
import http.client
import json
import statistics
import sys
import time


def main():
    a_port, b_port, root, keys_file, offset, count = sys.argv[1:7]
    offset, count = int(offset), int(count)
    keys = open(keys_file).read().split()[offset:offset + count]
    headers = {"Authorization": f"Bearer {root}", "Content-Type": "application/json"}
    a = http.client.HTTPConnection("127.0.0.1", int(a_port))
    b = http.client.HTTPConnection("127.0.0.1", int(b_port))

    def call(conn, path, body):
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())

    samples = []
    for key in keys:
        status, answer = call(b, "/v1/keys/verify", {"key": key})
        assert status == 200 and answer["code"] == "VALID", answer
        call(b, "/v1/keys/verify", {"key": key})  # now in B's L1
        status, _ = call(a, f"/v1/keys/{answer['key_id']}/revoke", {"reason": "bench"})
        assert status == 200
        revoked_at = time.perf_counter()
        deadline = revoked_at + 10
        while True:
            _, answer = call(b, "/v1/keys/verify", {"key": key})
            if answer["code"] == "REVOKED":
                samples.append((time.perf_counter() - revoked_at) * 1000)
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"node B still accepts a key revoked 10 s ago: {answer}")
    samples.sort()

    def pct(p):
        return samples[min(len(samples) - 1, int(len(samples) * p / 100))]

    print(json.dumps({
        "revocations": len(samples),
        "p50_ms": round(pct(50), 2),
        "p90_ms": round(pct(90), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(samples[-1], 2),
        "mean_ms": round(statistics.mean(samples), 2),
    }))


if __name__ == "__main__":
    main()
