"""AlterLab's official Python SDK, unchanged, straight to `omniscope simulate` and through
`omniscope proxy` in front of it: the SDK must get the same answers both ways.

Run by tests/it/alterlab_sdk.rs with two base URLs: the simulator's, and the proxy's
(`http://PROXY/alterlab`). Each way makes the same calls: a sync scrape, an async job (submitted,
then polled by `wait_for_job`), a 429 (one try: `max_retries=1`) and a 401 (a malformed key).
Prints one `ok` line per check; a difference exits non-zero with both answers.
"""

import asyncio
import sys

from alterlab import AlterLab, AlterLabAPIError

KEY = "sk_test_through_the_proxy"
# What differs between two calls whatever path they took: timings and ids.
VOLATILE = {"response_time_ms", "job_id", "request_id", "timestamp", "created_at", "completed_at"}


def stable(answer):
    if isinstance(answer, dict):
        return {key: stable(value) for key, value in answer.items() if key not in VOLATILE}
    if isinstance(answer, list):
        return [stable(value) for value in answer]
    return answer


async def refused(call):
    try:
        await call()
    except AlterLabAPIError as error:
        return {"status": error.status_code, "detail": error.detail}
    return {"status": "no error raised"}


async def answers(base_url):
    seen = {}
    async with AlterLab(api_key=KEY, base_url=base_url, timeout=10, max_retries=1) as client:
        seen["sync scrape"] = stable(await client.scrape("https://example.com/"))
        queued = await client.scrape("https://example.com/", sync=False)
        seen["async job: queued"] = sorted(queued)
        done = await client.wait_for_job(queued["job_id"], poll_interval=0.1, max_interval=0.2)
        seen["async job: result"] = stable(done)
        seen["429"] = await refused(
            lambda: client.scrape("https://fault.test/RATE_LIMIT_EXCEEDED"))
    async with AlterLab(api_key="not-a-key", base_url=base_url, max_retries=1) as client:
        seen["401"] = await refused(lambda: client.scrape("https://example.com/"))
    return seen


async def main(direct, proxied):
    straight = await answers(direct)
    through = await answers(proxied)
    for name, answer in straight.items():
        if through.get(name) != answer:
            print(f"FAIL {name}: direct {answer!r}, through the proxy {through.get(name)!r}")
            sys.exit(1)
        print(f"ok   {name}: the same answer through the proxy")
    expected = {"429": 429, "401": 401}
    for name, status in expected.items():
        if straight[name]["status"] != status:
            print(f"FAIL {name}: {straight[name]!r}")
            sys.exit(1)
    if straight["sync scrape"].get("status_code") != 200:
        print(f"FAIL sync scrape: {straight['sync scrape']!r}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: alterlab_through_proxy.py DIRECT_BASE_URL PROXIED_BASE_URL")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
