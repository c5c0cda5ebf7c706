"""scrapfly-sdk 0.12.0, unchanged, against omniscope simulate (/scrapfly)."""
from common import BASE, KEY, check
from scrapfly import ScrapeConfig, ScrapflyClient
from scrapfly.errors import ScrapflyError

client = ScrapflyClient(key=KEY, host=f"{BASE}/scrapfly")
result = client.scrape(ScrapeConfig(url="https://example.com/", render_js=True))
check(result.upstream_status_code == 200, "upstream_status_code")
check("Example Domain" in result.content, "content")
check(result.cost == 1, "X-Scrapfly-Api-Cost")

account = client.account()
check(account["subscription"]["usage"]["scrape"]["remaining"] == 3800, "account remaining")

try:
    client.scrape(ScrapeConfig(url="https://fault.test/ERR::THROTTLE::MAX_REQUEST_RATE_EXCEEDED"))
    check(False, "a throttled scrape raises")
except ScrapflyError as error:
    check(error.code == "ERR::THROTTLE::MAX_REQUEST_RATE_EXCEEDED", "a documented error: ERR::THROTTLE")
