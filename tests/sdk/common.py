"""Shared by the conformance scripts: the simulator's base URL and a check that says what failed."""
import sys

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8787"
KEY = "sim_test_key_0123456789"


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")
