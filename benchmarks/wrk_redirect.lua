-- wrk script of the redirect benchmark: GETs BENCH_PATH with a phone browser's headers and
-- counts every answer that is not the expected status (BENCH_STATUS, default 302).
-- done() prints one line "BENCH_RESULT {json}" that benchmarks/wrk.py reads.

local path = os.getenv("BENCH_PATH") or "/r/bench"
local expected = tonumber(os.getenv("BENCH_STATUS") or "302")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local request_text = nil
non2xx = 0
first_error = ""

function init(args)
  request_text = wrk.format("GET", path, {
    ["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 " ..
      "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ["Referer"] = "https://www.instagram.com/",
    ["Accept"] = "text/html,application/xhtml+xml",
  })
end

function request()
  return request_text
end

function response(status, headers, body)
  if status ~= expected then
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
    e.connect, e.read, e.write, 0, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
  if sample ~= "" then
    io.write("BENCH_FIRST_ERROR " .. string.gsub(sample, "\n", " ") .. "\n")
  end
end
