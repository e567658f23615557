-- wrk script for the GraphQL workloads. Configured through the environment:
--   BENCH_BODY_FILE  a file holding the JSON request body
--   BENCH_TOKEN  bearer token (optional)
--   BENCH_MODE   fixed | random_customer (replaces __ID__ with an existing
--                customer id, see bench/load.sql) | unique_username
--                (replaces __USERNAME__ with a name never used before)
--   BENCH_MAX    the highest customer number for random_customer
--   BENCH_TAG    makes unique usernames unique across runs
-- done() prints one JSON line for bench/run.py.

local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()
local token = os.getenv("BENCH_TOKEN")
local mode = os.getenv("BENCH_MODE") or "fixed"
local max_id = tonumber(os.getenv("BENCH_MAX") or "1")
local tag = os.getenv("BENCH_TAG") or "0"
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  wrk.body = body
  math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
  if mode == "fixed" then
    return wrk.format()
  end
  counter = counter + 1
  local this
  if mode == "random_customer" then
    local id = string.format("00000000-0000-4000-8000-%012x", math.random(1, max_id))
    this = string.gsub(body, "__ID__", id)
  else
    local name = string.format("w5-%s-%d-%d", tag, tid or 0, counter)
    this = string.gsub(body, "__USERNAME__", name)
  end
  return wrk.format(nil, nil, nil, this)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
