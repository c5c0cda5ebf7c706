-- Load for `omniscope simulate --scenario bench`:
--   wrk -t2 -c64 -d15s -s benches/wrk-scrape.lua http://127.0.0.1:8787/v1/scrape
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "sk_test_bench"
wrk.body = '{"url":"https://example.com/"}'
