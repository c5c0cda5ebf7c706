"""zenrows 1.11.0, unchanged, against omniscope simulate (/zenrows)."""
import requests

from common import BASE, KEY, check
from zenrows import ZenRowsClient

client = ZenRowsClient(KEY, base_url=f"{BASE}/zenrows/v1/")
response = client.fetch("https://example.com/", params={"js_render": "true"})
check(response.status_code == 200 and "Example Domain" in response.text, "fetch returns the raw page")
check(response.headers["X-Request-Cost"] == "1", "X-Request-Cost")
check(response.headers["Concurrency-Remaining"] == "9", "Concurrency-Remaining")

# The SDK has no usage call: the documented one (official CLI, usage.ts) takes an X-API-Key header.
usage = requests.get(f"{BASE}/zenrows/v1/subscriptions/self/details", headers={"X-API-Key": KEY}, timeout=10)
check(usage.status_code == 200 and usage.json()["plan"]["name"] == "Simulated", "usage (documented call)")

response = client.fetch("https://fault.test/AUTH004")
check(response.status_code == 402 and response.json()["code"] == "AUTH004", "a documented error: 402 AUTH004")
