"""crawlbase 1.1.0, unchanged, against omniscope simulate (/crawlbase)."""
import crawlbase.base_api

from common import BASE, KEY, check
from crawlbase import CrawlingAPI

# The SDK's base URL is a module constant.
crawlbase.base_api.CRAWLBASE_API_URL = f"{BASE}/crawlbase/"

api = CrawlingAPI({"token": KEY})
response = api.get("https://example.com/")
check(response["status_code"] == 200, "HTTP 200")
check(response["headers"]["original_status"] == "200", "original_status")
check(response["headers"]["cb_status"] == "200", "cb_status")
check(b"Example Domain" in response["body"], "raw page")

# No account class: the same request() with the account path.
account_api = CrawlingAPI({"token": KEY})
account_api.base_path = "account"
account = account_api.request({"product": "crawling-api"})
check(account["json"]["remainingCredits"] == 3800, "account remainingCredits")

response = api.get("https://fault.test/525")
check(response["headers"]["cb_status"] == "525", "a documented error: cb_status 525")
