-- wrk script of the ingestion benchmark: POSTs pre-built bodies in rotation, counts non-2xx.
-- Environment: BENCH_BODIES (file, one JSON body per line), BENCH_PATH, BENCH_AUTH (header),
-- BENCH_UNIQUE=1 to rewrite every "ajs-00000000-" messageId prefix with a per-request tag, so
-- that no event repeats (costs the client a copy of the body per request).
-- done() prints one line "BENCH_RESULT {json}" that benchmarks/wrk.py reads.

local bodies_path = os.getenv("BENCH_BODIES")
local path = os.getenv("BENCH_PATH") or "/v1/batch"
local auth = os.getenv("BENCH_AUTH") or ""
local unique = os.getenv("BENCH_UNIQUE") == "1"
-- BENCH_RATE_PER_THREAD > 0: a paced load, for the latency at a given rate rather than at
-- saturation. Each thread sends on a schedule of its own, requests per second on average, with
-- exponential gaps (independent visitors, Poisson arrivals: fixed gaps keep the connections in
-- step, so their requests arrive as bursts that queue behind each other). The schedule is in
-- absolute time (CLOCK_MONOTONIC through LuaJIT's ffi), so slow responses do not slow the rate:
-- a connection that comes back late sends at once, until the thread is back on schedule.
local rate = tonumber(os.getenv("BENCH_RATE_PER_THREAD") or "0")
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]]
  local CLOCK_MONOTONIC = 1
  local now = ffi.new("bench_timespec")
  local mean_gap_ms = 1000 / rate
  local next_at = nil

  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end

  function delay()
    local current = now_ms()
    next_at = (next_at or current) - math.log(1 - math.random()) * mean_gap_ms
    local wait = next_at - current
    if wait <= 0 then
      return 0
    end
    return math.floor(wait + 0.5)
  end
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local headers = {["Content-Type"] = "application/json"}
local bodies = {}
local requests = {}
local position = 1
local sent = 0
non2xx = 0
first_error = ""

function init(args)
  if auth ~= "" then
    headers["Authorization"] = auth
  end
  local file = assert(io.open(bodies_path, "rb"))
  for line in file:lines() do
    if #line > 0 then
      bodies[#bodies + 1] = line
      if not unique then
        requests[#requests + 1] = wrk.format("POST", path, headers, line)
      end
    end
  end
  file:close()
  -- Threads start at different places in the pool.
  position = (id * 97) % #bodies + 1
  math.randomseed(os.time() + id * 7919)
end

function request()
  local current = position
  position = position % #bodies + 1
  if not unique then
    return requests[current]
  end
  sent = sent + 1
  local tag = string.format("ajs-%08x-", id * 134217728 + sent)
  local body = string.gsub(bodies[current], "ajs%-00000000%-", tag)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 400)
    end
  end
end

function done(summary, latency, requests)
  local failed = 0
  local sample = ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    local message = thread:get("first_error")
    if sample == "" and message ~= nil then
      sample = message
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, failed,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
  if sample ~= "" then
    io.write("BENCH_FIRST_ERROR " .. string.gsub(sample, "\n", " ") .. "\n")
  end
end
