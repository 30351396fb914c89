-- POST /v1/keys/verify of one key, the request built once (bench only): with no request()
-- function wrk sends the same bytes every time and runs no Lua per request, as for /healthz.
-- env: ROOT_KEY, KEY
wrk.method = "POST"
wrk.body = '{"key":"' .. os.getenv("KEY") .. '"}'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ROOT_KEY")
wrk.headers["Content-Type"] = "application/json"
