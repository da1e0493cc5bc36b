--- bench/bench.lua — mxroute's side of the benchmark (see bench/README.md).
--
--   lua5.4 bench/bench.lua SERVER:PORT CONCURRENCY DOMAINFILE
--
-- Resolves every domain of DOMAINFILE with one resolver, CONCURRENCY plans
-- in flight (a callback submits the next), then runs the pure planner, and
-- prints one line per measurement.
local mxroute = require "mxroute"

local server, conc, file = arg[1], tonumber(arg[2]), arg[3]
assert(server and conc and file, "usage: bench.lua SERVER:PORT CONCURRENCY DOMAINFILE")

local domains = {}
for line in io.lines(file) do
  if line ~= "" then domains[#domains + 1] = line end
end

local function now()
  local ok, cq = pcall(require, "cqueues")
  if ok then return cq.monotime() end
  return os.clock()
end

local function rss_kib()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local r = mxroute.resolver { nameservers = { server }, timeout = 2, tries = 3 }
local nexti, finished, failed, targets = 0, 0, 0, 0
local function submit_next(cb)
  nexti = nexti + 1
  if nexti <= #domains then r:submit(domains[nexti], cb) end
end
local function on_done(plan)
  finished = finished + 1
  if plan then targets = targets + #plan.targets else failed = failed + 1 end
  submit_next(on_done)
end

local rss0 = rss_kib()
local t0 = now()
for _ = 1, conc do submit_next(on_done) end
while finished < #domains do
  r:step(r:timeout() or 1)
end
local t1 = now()
print(("mxroute:    plans=%d failed=%d seconds=%.3f plans_per_s=%.0f targets=%d rss_growth_kib=%d lua_kib=%.0f")
  :format(finished, failed, t1 - t0, finished / (t1 - t0), targets,
          rss_kib() - rss0, collectgarbage("count")))
r:close()

-- The pure planner: 2 MX hosts, 2 addresses each.
local records = {
  domain = "example.test",
  mx = { { pref = 10, name = "mx1.example.test" }, { pref = 20, name = "mx2.example.test" } },
  addrs = {
    ["mx1.example.test"] = { "192.0.2.1", "2001:db8::1" },
    ["mx2.example.test"] = { "192.0.2.2", "2001:db8::2" },
  },
}
local n = 100000
local p0 = now()
for _ = 1, n do assert(mxroute.plan(records)) end
local p1 = now()
print(("planner:    plans=%d seconds=%.3f plans_per_s=%.0f"):format(n, p1 - p0, n / (p1 - p0)))
