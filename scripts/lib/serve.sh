# Sourced by the scripts that test a live latchkey (scripts/schemathesis,
# scripts/generated-clients): `serve WORK TENANT` bootstraps the tenant TENANT and starts target/debug/latchkey
# on DATABASE_URL (set by the caller) with a fresh master secret, logging to WORK/server.log.
# It sets `root_key`, `server` (the PID; the caller's EXIT trap stops it) and `base` (the URL,
# once /healthz answers), and calls the caller's `fail MESSAGE` if the server does not come up.
# `served_cleanly WORK WHO` fails if the server's log holds a 5xx or a panic.
serve() {
    local work=$1 tenant=$2
    LATCHKEY_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export LATCHKEY_SECRET_KEY
    # Port 0: the kernel picks a free port as latchkey binds it (no port picked beforehand that
    # another process could take meanwhile); latchkey logs the one it got.
    export LATCHKEY_BIND=127.0.0.1:0
    export LATCHKEY_MANAGEMENT_RATE_LIMIT=1000000
    # Warnings (every 5xx is one) and latchkey's startup lines, "latchkey listening" among them.
    export RUST_LOG=warn,latchkey::startup=info
    export LATCHKEY_LOG_FORMAT=json

    root_key=$(RUST_LOG=warn target/debug/latchkey bootstrap --tenant "$tenant" \
        --email "$tenant@example.com" --json \
        | tail -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["root_key"])')
    target/debug/latchkey serve >"$work/server.log" 2>&1 &
    server=$!

    # Up to 30 s for the port in the log, then for /healthz to answer on it.
    local deadline=$((SECONDS + 30)) port
    base=""
    until [ -n "$base" ] && curl -fsS --max-time 2 "$base/healthz" >/dev/null 2>&1; do
        kill -0 "$server" 2>/dev/null || fail "latchkey exited before it answered /healthz"
        [ "$SECONDS" -lt "$deadline" ] || fail "latchkey did not answer /healthz within 30 s"
        if [ -z "$base" ]; then
            port=$(grep -m 1 '"message":"latchkey listening"' "$work/server.log" \
                | sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p' || true)
            [ -z "$port" ] || base="http://127.0.0.1:$port"
        fi
        sleep 0.1
    done
}

served_cleanly() {
    local work=$1 who=$2
    if grep -q '"status":5' "$work/server.log" || grep -qi 'panicked' "$work/server.log"; then
        echo "$who: the server logged a 5xx or a panic:" >&2
        grep -E '"status":5|panicked' "$work/server.log" | head -n 5 >&2
        exit 1
    fi
}
