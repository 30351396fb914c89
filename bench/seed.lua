-- Creates keys through the API and appends each plaintext to keys-<thread>.txt (bench only).
-- env: ROOT_KEY, KEYSPACE_ID, PER_THREAD, OUT_DIR, BODY_EXTRA (JSON fields to add, optional)
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  created = 0
  quota = tonumber(os.getenv("PER_THREAD"))
  out = io.open(os.getenv("OUT_DIR") .. "/keys-" .. id .. ".txt", "a")
  local extra = os.getenv("BODY_EXTRA") or ""
  body = '{"keyspace_id":"' .. os.getenv("KEYSPACE_ID") .. '"' .. extra .. '}'
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("ROOT_KEY"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  return wrk.format("POST", "/v1/keys", headers, body)
end

function response(status, _, response_body)
  if status == 201 then
    local key = response_body:match('"key":"([^"]+)"')
    if key then
      out:write(key, "\n")
      created = created + 1
    end
  end
  if created >= quota then
    out:flush()
    wrk.thread:stop()
  end
end
