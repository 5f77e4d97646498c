-- wrk script of the redirect benchmark: GETs BENCH_PATH with a phone browser's headers and
-- counts every answer that is not the expected status (BENCH_STATUS, default 302).
-- done() prints one line "BENCH_RESULT {json}" that benchmarks/wrk.py reads.

local path = os.getenv("BENCH_PATH") or "/r/bench"
local expected = tonumber(os.getenv("BENCH_STATUS") or "302")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- BENCH_USER_AGENTS=N (default 1) cycles through N distinct realistic user agents (phone
-- Safari, Chrome on Android/Windows, Instagram and TikTok in-app), so per-user-agent caches
-- cannot hide the cost of the bot rules.
local user_agent_count = tonumber(os.getenv("BENCH_USER_AGENTS") or "1")

local templates = {
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 " ..
    "(KHTML, like Gecko) Version/17.%d Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; SM-S91%dB) AppleWebKit/537.36 (KHTML, like Gecko) " ..
    "Chrome/124.0.6367.%d Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " ..
    "Chrome/12%d.0.6367.%d Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like " ..
    "Gecko) Mobile/15E148 Instagram 3%d.0.0.34.111 (iPhone15,2; iOS 17_1; en_US; en)",
  "Mozilla/5.0 (Linux; Android 13; Pixel %d Build/TP1A.220624.014; wv) AppleWebKit/537.36 " ..
    "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.%d Mobile Safari/537.36 " ..
    "AppName/musical_ly BytedanceWebview/d8a21c6",
}

local requests_text = {}
local position = 0
non2xx = 0
first_error = ""

function init(args)
  for index = 0, user_agent_count - 1 do
    local template = templates[(index % #templates) + 1]
    local serial = math.floor(index / #templates)
    local user_agent = string.format(template, serial % 10, serial)
    if user_agent_count == 1 then
      user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 " ..
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
    end
    requests_text[index + 1] = wrk.format("GET", path, {
      ["User-Agent"] = user_agent,
      ["Referer"] = "https://www.instagram.com/",
      ["Accept"] = "text/html,application/xhtml+xml",
    })
  end
end

function request()
  position = (position % #requests_text) + 1
  return requests_text[position]
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
