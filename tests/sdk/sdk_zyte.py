"""zyte-api 0.11.0, unchanged, against omniscope simulate (/zyte)."""
import base64

from common import BASE, KEY, check
from zyte_api import RequestError, ZyteAPI

client = ZyteAPI(api_key=KEY, api_url=f"{BASE}/zyte/v1/")
result = client.get({"url": "https://example.com/", "httpResponseBody": True})
check(result["statusCode"] == 200, "statusCode")
check(b"Example Domain" in base64.b64decode(result["httpResponseBody"]), "httpResponseBody")

# No usage call: Zyte's Stats API is another host with another key.
try:
    client.get({"url": "https://fault.test//auth/key-not-found", "httpResponseBody": True}, handle_retries=False)
    check(False, "a 401 raises")
except RequestError as error:
    check(error.status == 401 and error.parsed.type == "/auth/key-not-found", "a documented error: 401")
