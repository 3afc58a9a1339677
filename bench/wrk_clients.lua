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

function request()
  counter = counter + 1
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
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  local sc = headers["Set-Cookie"]
  if sc then
    local v = sc:match("^(gridcase_session=[^;]*)")
    if v then cookie = v end
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do counts[k] = (counts[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'GRIDCASE_WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ", ")))
end
