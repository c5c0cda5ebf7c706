"""AlterLab's official Python SDK, unchanged, against `omniscope simulate`.

Run by tests/it/sdk.rs with the simulator's base URL as the only argument (the simulator started
with tests/sdk/alterlab_scenario.toml). Each check prints one line; any failure exits non-zero with
what was expected and what came back. Only the SDK's public API is used.
"""

import asyncio
import logging
import sys
import time

from importlib import metadata
from alterlab import (
    AlterLab,
    AlterLabAPIError,
    CostControls,
    JobExpiredError,
)

KEY = "sk_test_conformance"
FAST_POLL = {"poll_interval": 0.2, "poll_max_interval": 0.5}


class RetryLog(logging.Handler):
    """Counts the SDK's own 'Retriable error' warnings (its retry loop logs one per retry)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.retries = []

    def emit(self, record):
        if "Retriable error" in record.getMessage():
            self.retries.append(record.getMessage())


def check(name, condition, detail):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok   {name}")


async def sync_scrape(client):
    result = await client.scrape("https://example.com/")
    check("scrape: target status", result.get("status_code") == 200, result)
    check("scrape: content", "Example Domain" in result.get("content", ""), result)
    documented = ["url", "status_code", "content", "headers", "cached", "credits_used",
                  "response_time_ms", "size_bytes", "billing"]
    missing = [key for key in documented if key not in result]
    check("scrape: the documented fields", not missing, f"missing {missing}")
    billing = result["billing"]
    check("scrape: billing.total_credits (microcents)",
          isinstance(billing.get("total_credits"), int) and billing["total_credits"] > 0, billing)
    check("scrape: billing.tier_used", billing.get("tier_used") == "1", billing)


async def tier_via_cost_controls(client):
    result = await client.scrape(
        "https://example.com/", cost_controls=CostControls(max_tier="3.5"))
    check("scrape: cost_controls.max_tier is the tier used",
          result["billing"].get("tier_used") == "3.5", result["billing"])


async def slow_target_through_a_job(client):
    # A slow target answers 202 + job_id; scrape() polls wait_for_job until it completes.
    result = await client.scrape("https://fault.test/async", **FAST_POLL)
    check("scrape (slow target): 202, polled to completion",
          result.get("status_code") == 200 and "job_id" not in result, result)

    queued = await client.scrape("https://example.com/", sync=False)
    check("scrape(sync=False): a job id, at once", "job_id" in queued, queued)
    job_id = queued["job_id"]
    status = await client.get_job_status(job_id)
    check("get_job_status: a state the SDK knows",
          status.get("status") in ("pending", "running", "completed"), status)
    done = await client.wait_for_job(job_id, poll_interval=0.2, max_interval=0.5)
    check("wait_for_job: the scrape response", done.get("status_code") == 200, done)
    status = await client.get_job_status(job_id)
    check("get_job_status: completed with its result",
          status.get("status") == "completed" and status.get("result", {}).get("status_code") == 200,
          status)


async def usage(client):
    reading = await client.get_usage()
    documented = ["credits_available", "credits_used", "credits_limit", "requests_count",
                  "subscription_tier", "billing_period_start", "billing_period_end"]
    missing = [key for key in documented if key not in reading]
    check("get_usage: the documented fields", not missing, f"missing {missing}")
    # The SDK's own example: usage['credits_available'], usage['subscription_tier'].
    check("get_usage: credits_available", reading["credits_available"] > 0, reading)
    check("get_usage: subscription_tier", reading["subscription_tier"] == "Growth", reading)
    check("get_usage: requests counted", reading["requests_count"] >= 1, reading)


async def estimate(client):
    answer = await client.estimate_cost("https://example.com/", mode="js",
                                        cost_controls=CostControls(max_tier="4"))
    documented = ["url", "estimated_tier", "estimated_credits", "confidence",
                  "max_possible_credits", "reasoning"]
    missing = [key for key in documented if key not in answer]
    check("estimate_cost: the documented fields", not missing, f"missing {missing}")
    check("estimate_cost: max >= estimate",
          answer["max_possible_credits"] >= answer["estimated_credits"], answer)


async def bad_key(base_url):
    async with AlterLab(api_key="not-a-key", base_url=base_url, max_retries=1) as client:
        try:
            await client.scrape("https://example.com/")
        except AlterLabAPIError as error:
            check("401: AlterLabAPIError", error.status_code == 401, error)
            check("401: a readable detail", isinstance(error.detail, str)
                  and "invalid" in error.detail.lower() and "{" not in error.detail, error.detail)
            return
    raise AssertionError("401: no error raised for a malformed key")


async def no_balance(client):
    try:
        await client.scrape("https://fault.test/INSUFFICIENT_CREDITS")
    except AlterLabAPIError as error:
        check("402: AlterLabAPIError", error.status_code == 402, error)
        check("402: a readable detail", isinstance(error.detail, str)
              and "insufficient balance" in error.detail and "{" not in error.detail, error.detail)
        return
    raise AssertionError("402: no error raised")


async def rate_limited(client, retries):
    # Every attempt is refused with Retry-After: 1; the SDK waits that long between its three tries.
    started = time.monotonic()
    try:
        await client.scrape("https://fault.test/RATE_LIMIT_EXCEEDED")
    except AlterLabAPIError as error:
        waited = time.monotonic() - started
        check("429: AlterLabAPIError after the SDK's retries", error.status_code == 429, error)
        check("429: a readable detail", isinstance(error.detail, str)
              and "rate limit" in error.detail.lower(), error.detail)
        check("429: retried, each after Retry-After", len(retries.retries) == 3, retries.retries)
        check("429: Retry-After honoured (3 waits of 1 s)", waited >= 3.0, f"{waited:.2f} s")
        return
    raise AssertionError("429: no error raised")


async def unknown_job(client):
    for call in (client.get_job_status, client.wait_for_job):
        try:
            await call("job_does_not_exist")
        except JobExpiredError as error:
            check(f"404 on {call.__name__}: JobExpiredError", error.status_code == 404, error)
            continue
        raise AssertionError(f"{call.__name__}: no JobExpiredError for an unknown job")


async def main(base_url):
    print(f"alterlab SDK {metadata.version('alterlab')} against {base_url}")
    retries = RetryLog()
    logging.getLogger("alterlab").addHandler(retries)
    async with AlterLab(api_key=KEY, base_url=base_url, timeout=10) as client:
        await sync_scrape(client)
        await tier_via_cost_controls(client)
        await slow_target_through_a_job(client)
        await usage(client)
        await estimate(client)
        await no_balance(client)
        await unknown_job(client)
        await rate_limited(client, retries)
    await bad_key(base_url)
    print("all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: alterlab_conformance.py BASE_URL")
    try:
        asyncio.run(main(sys.argv[1]))
    except AssertionError as failure:
        print(f"FAIL {failure}")
        sys.exit(1)
