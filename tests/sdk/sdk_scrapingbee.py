"""scrapingbee 2.2.0, unchanged, against omniscope simulate (/scrapingbee)."""
from common import BASE, KEY, check
from scrapingbee import ScrapingBeeClient

client = ScrapingBeeClient(api_key=KEY)
# The SDK's endpoints are class attributes; an instance attribute points this client elsewhere.
client.HTML_API_URL = f"{BASE}/scrapingbee/api/v1/"
client.USAGE_API_URL = f"{BASE}/scrapingbee/api/v1/usage"

response = client.html_api("https://example.com/", params={"render_js": False})
check(response.status_code == 200 and "Example Domain" in response.text, "scrape returns the raw page")
check(response.headers["Spb-Initial-Status-Code"] == "200", "Spb-Initial-Status-Code")
check(response.headers["Spb-Cost"] == "1", "Spb-Cost")

usage = client.usage().json()
check(usage["max_api_credit"] - usage["used_api_credit"] == 3800, "usage: max - used")

response = client.html_api("https://fault.test/401")
check(response.status_code == 401, "a documented error: 401")
