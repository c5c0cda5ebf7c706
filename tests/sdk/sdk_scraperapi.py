"""scraperapi-sdk 1.6.1, unchanged, against omniscope simulate (/scraperapi)."""
from common import BASE, KEY, check
from scraperapi_sdk import ScraperAPIClient
from scraperapi_sdk.exceptions import ScraperAPIException

client = ScraperAPIClient(KEY, api_endpoint=f"{BASE}/scraperapi")
page = client.get("https://example.com/", params={"render": "true"})
check("Example Domain" in page, "scrape returns the raw page")

# No account method in the SDK: its public make_request() with endpoint="account" is the call.
account = client.make_request(endpoint="account").json()
check(account["requestLimit"] - account["requestCount"] == 3800, "account: requestLimit - requestCount")

try:
    client.get("https://fault.test/429")
    check(False, "a 429 raises")
except ScraperAPIException as error:
    check(error.original_exception.response.status_code == 429, "a 429 raises ScraperAPIException")
