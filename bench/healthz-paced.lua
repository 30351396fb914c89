-- GET /healthz with the paced waits of verify.lua (bench only): the latency the generator and
-- the kernel add by themselves at a given rate, for comparison with the paced verify run.
-- env: PACE_MS (each connection waits on average this many milliseconds between requests;
-- default 2)
local pace = tonumber(os.getenv("PACE_MS") or "2")
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() * 16 + id)
end

function delay()
  return math.random(0, 2 * pace)
end
