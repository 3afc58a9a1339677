-- wrk script of the field bench (bench/wrkgen.py writes the clients file and runs wrk).
--
-- One wrk thread per client, one connection per thread (wrk -t N -c N): each thread is
-- one signed-in grid worker with its own session cookie and CSRF token, read from the
-- file named by GRIDCASE_WRK_CLIENTS (one line per client, tab-separated):
--   cookie <TAB> csrf token <TAB> method <TAB> path <TAB> body template
-- A body template's "{client_id}" becomes a fresh UUID on every request (a run nonce,
-- the thread and a counter: never repeated, so every report is a new one) and
-- "{i}" the request's number. A Set-Cookie answer replaces the thread's cookie, as a
-- browser would. done() prints one JSON line: wrk's own latency percentiles (µs),
-- requests, duration, socket errors, and the answers counted by status.
--
-- Paced (open loop) when GRIDCASE_WRK_RATE is set (requests per second, all clients
-- together): each client sends on its own schedule, one request every
-- clients / rate seconds, the clients' schedules evenly staggered (as wrk2 does). A client
-- whose answer comes late sends its next request as soon as it can, and that request's
-- latency counts from the time it was due, not from when it could go out (no coordinated
-- omission: a slow server is not excused by the requests it held back). done() then also
-- prints those latencies' percentiles ("paced").

local clients = {}
local nonce = os.getenv("GRIDCASE_WRK_NONCE") or "00000000"
do
  local path = os.getenv("GRIDCASE_WRK_CLIENTS")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    local cookie, csrf, method, p, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    table.insert(clients, {cookie = cookie, csrf = csrf, method = method, path = p, body = body})
  end
  f:close()
end

local threads = {}
local n_setup = 0
local rate = tonumber(os.getenv("GRIDCASE_WRK_RATE") or "")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } gridcase_timespec;
int clock_gettime(int clock_id, gridcase_timespec *tp);
]]
local ts = ffi.new("gridcase_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

function setup(thread)
  n_setup = n_setup + 1
  local c = clients[(n_setup - 1) % #clients + 1]
  thread:set("tid", n_setup)
  thread:set("cookie", c.cookie)
  thread:set("csrf", c.csrf)
  thread:set("method", c.method)
  thread:set("rpath", c.path)
  thread:set("body", c.body)
  table.insert(threads, thread)
end

local counter = 0
statuses = {}
-- Paced runs, per thread (= per connection): when the next request is due, when the one
-- in flight was due, and every answered request's latency from its due time (ms).
local due = nil
local sent_due = nil
paced_ms = {}

if rate then
  local interval = #clients / rate * 1000

  function delay()
    local now = now_ms()
    if due == nil then
      due = now + (tid - 1) * interval / #clients
    end
    return math.max(0, math.ceil(due - now))
  end

  function advance()
    sent_due = due or now_ms()
    due = sent_due + interval
  end
end

function request()
  counter = counter + 1
  if rate then advance() end
  local headers = {}
  if cookie ~= "" then headers["Cookie"] = cookie end
  local b = nil
  if body ~= "" then
    local cid = string.format("%s-%04x-4%03x-8%03x-%012x", nonce, tid % 65536,
      math.floor(counter / 4096) % 4096, counter % 4096, counter)
    b = body:gsub("{client_id}", cid):gsub("{i}", tostring(counter))
    headers["Content-Type"] = "application/json"
    headers["X-CSRF-Token"] = csrf
  end
  return wrk.format(method, rpath, headers, b)
end

function response(status, headers, body)
  if sent_due then
    paced_ms[#paced_ms + 1] = now_ms() - sent_due
    sent_due = nil
  end
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  local sc = headers["Set-Cookie"]
  if sc then
    local v = sc:match("^(gridcase_session=[^;]*)")
    if v then cookie = v end
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(p / 100 * #sorted))]
end

function done(summary, latency, requests)
  local counts = {}
  local paced = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do counts[k] = (counts[k] or 0) + v end
    end
    local l = t:get("paced_ms")
    if l then
      for _, v in ipairs(l) do paced[#paced + 1] = v end
    end
  end
  table.sort(paced)
  local paced_json = "null"
  if rate then
    paced_json = string.format(
      '{"rate": %.3f, "answered": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}',
      rate, #paced, math.floor(percentile(paced, 50) * 1000),
      math.floor(percentile(paced, 95) * 1000), math.floor(percentile(paced, 99) * 1000),
      math.floor((paced[#paced] or 0) * 1000))
  end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'GRIDCASE_WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "statuses": {%s}, "paced": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ", "), paced_json))
end
