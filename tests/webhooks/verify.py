"""Verifies webhook deliveries captured by the integration tests with the official Standard
Webhooks library, as a receiver would.

Reads one JSON document on stdin: {"secrets": [...], "deliveries": [{"headers": {...},
"body": "...", "received_at": <unix seconds>}]}. Every delivery must verify under every secret
given (during a secret rotation both sign). "received_at" is when the test's receiver got it by
the application's clock, which tests move forward instead of waiting: the library's timestamp
check (5 minutes either side) runs against that moment. Prints one line per delivery; exits 1
on the first that does not verify.
"""

import json
import sys
from datetime import datetime, timezone

import standardwebhooks.webhooks as library
from standardwebhooks import Webhook, WebhookVerificationError


def at(moment):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(moment, tz=tz or timezone.utc)

    return Frozen


def main():
    given = json.load(sys.stdin)
    if not given["deliveries"]:
        print("no deliveries to verify", file=sys.stderr)
        return 1
    for delivery in given["deliveries"]:
        library.datetime = at(delivery["received_at"])
        for secret in given["secrets"]:
            try:
                payload = Webhook(secret).verify(delivery["body"], delivery["headers"])
            except WebhookVerificationError as err:
                print(f"NOT VERIFIED {delivery['headers'].get('webhook-id')}: {err}")
                return 1
            print(f"verified {delivery['headers']['webhook-id']} {payload['type']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
