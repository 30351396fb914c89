-- POST /v1/keys/verify over a slice of the seeded keys (bench only).
-- env: ROOT_KEY, KEYS_FILE, KEY_OFFSET (0-based), KEY_COUNT, THREADS, and PACE_MS (optional:
-- each connection waits on average this many milliseconds between requests, for runs below
-- saturation; see delay() below)
-- Each thread walks its own part of the slice, so with KEY_COUNT >= requests every request is
-- for a key this node has not seen (cold); with a small KEY_COUNT keys repeat (warm).
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  keys = {}
  for line in io.lines(os.getenv("KEYS_FILE")) do
    keys[#keys + 1] = line
  end
  offset = tonumber(os.getenv("KEY_OFFSET") or "0")
  local count = tonumber(os.getenv("KEY_COUNT") or "1000")
  local threads = tonumber(os.getenv("THREADS") or "2")
  per_thread = math.floor(count / threads)
  base = offset + id * per_thread
  i = 0
  math.randomseed(os.time() * 16 + id)
  local headers = {
    ["Authorization"] = "Bearer " .. os.getenv("ROOT_KEY"),
    ["Content-Type"] = "application/json",
  }
  -- Every request of this thread, built once: request() then costs the generator (which
  -- shares the cores with the server) no more than a static request does.
  requests = {}
  for j = 1, per_thread do
    local body = '{"key":"' .. keys[base + j] .. '"}'
    requests[j] = wrk.format("POST", "/v1/keys/verify", headers, body)
  end
end

function request()
  local built = requests[(i % per_thread) + 1]
  i = i + 1
  return built
end

-- wrk fires timers on whole milliseconds. With a fixed wait every connection of a thread sends
-- on the same tick, so requests arrive in bursts of one per connection, which no real set of
-- clients does. A wait drawn from 0 .. 2 * PACE_MS (same mean) spreads them over the ticks.
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace then
  function delay()
    return math.random(0, 2 * pace)
  end
end
