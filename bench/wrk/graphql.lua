-- wrk script for the GraphQL workloads. Configured through the environment:
--   BENCH_BODY_FILE  a file holding the JSON request body
--   BENCH_TOKEN  bearer token (optional)
--   BENCH_MODE   fixed | random_customer (replaces __ID__ with an existing
--                customer id, see bench/load.sql) | unique_username
--                (replaces __USERNAME__ with a name never used before) |
--                unique_key (a made-up access key per request) |
--                login_flood (unique_username, each request from another
--                X-Forwarded-For address) | bodies (one body per line of
--                BENCH_BODY_FILE, each sent once, then round again)
--   BENCH_MAX    the highest customer number for random_customer
--   BENCH_TAG    makes unique usernames unique across runs
--   BENCH_METHOD GET or POST (default); GET sends no body
--   BENCH_HEADERS  extra request headers, "Name: value" lines
--   BENCH_COUNT  counts responses whose body contains this text
-- done() prints one JSON line for bench/run.py.

local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()
local token = os.getenv("BENCH_TOKEN")
local mode = os.getenv("BENCH_MODE") or "fixed"
local max_id = tonumber(os.getenv("BENCH_MAX") or "1")
local tag = os.getenv("BENCH_TAG") or "0"
local method = os.getenv("BENCH_METHOD") or "POST"
local extra_headers = os.getenv("BENCH_HEADERS") or ""
local count_text = os.getenv("BENCH_COUNT") or ""
local counter = 0
local threads = {}
local bodies = {}
local next_body = 1
counted = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  wrk.method = method
  if method == "POST" then
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = body
  else
    wrk.body = nil
  end
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  for name, value in string.gmatch(extra_headers, "([^:\n]+):%s*([^\n]*)") do
    wrk.headers[name] = value
  end
  -- Split once: bodies may be hundreds of kilobytes.
  body_before, body_after = string.match(body, "^(.-)__USERNAME__(.*)$")
  if mode == "bodies" then
    for line in string.gmatch(body, "[^\n]+") do
      table.insert(bodies, line)
    end
    -- Threads start at different places so that they send different bodies.
    next_body = 1 + math.floor((tid - 1) * #bodies / 2) % #bodies
  end
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local function with_headers(extra)
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  for name, value in pairs(extra) do
    headers[name] = value
  end
  return headers
end

function request()
  if mode == "fixed" then
    return wrk.format()
  end
  counter = counter + 1
  if mode == "random_customer" then
    local id = string.format("00000000-0000-4000-8000-%012x", math.random(1, max_id))
    return wrk.format(nil, nil, nil, (string.gsub(body, "__ID__", id)))
  elseif mode == "bodies" then
    local this = bodies[next_body]
    next_body = next_body % #bodies + 1
    return wrk.format(nil, nil, nil, this)
  elseif mode == "unique_key" then
    -- vb_ and 43 URL-safe characters, the shape of a real key.
    local key = string.format("vb_%s%s", tag, string.format("%d-%d", tid or 0, counter))
    key = key .. string.rep("x", 46 - #key)
    return wrk.format(nil, nil, with_headers({ Authorization = "Bearer " .. key }))
  end
  local name = string.format("w5-%s-%d-%d", tag, tid or 0, counter)
  local this = body_before and (body_before .. name .. body_after) or body
  if mode == "login_flood" then
    local address = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
    return wrk.format(nil, nil, with_headers({ ["X-Forwarded-For"] = address }), this)
  end
  return wrk.format(nil, nil, nil, this)
end

if count_text ~= "" then
  function response(status, headers, response_body)
    if response_body and string.find(response_body, count_text, 1, true) then
      counted = counted + 1
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_counted = 0
  for _, thread in ipairs(threads) do
    total_counted = total_counted + (thread:get("counted") or 0)
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"status_errors":%d,"bytes":%d,"counted":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, e.status, summary.bytes, total_counted))
end
