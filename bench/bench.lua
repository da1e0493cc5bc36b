--- bench/bench.lua — mxroute's side of the benchmark (see bench/run).
--
--   lua5.4 bench/bench.lua SERVER:PORT CONCURRENCY DOMAINFILE [MODE [MAX_INFLIGHT]]
--
-- MODE "loop" (default): one resolver, CONCURRENCY plans in flight (a
-- callback submits the next), r:step() in a plain loop; then the pure
-- planner. MODE "cqueues": CONCURRENCY cqueues threads, each resolving
-- domains one after the other with r:resolve(). MODE "quick": "loop"
-- without the planner (for callgrind). MODE "setup": everything before
-- the loop (the domains, the expected plans, the resolver, the clock),
-- then stop: under callgrind, "quick" minus "setup" counts the loop
-- alone. Every plan of dN.bench.test is
-- checked against the zone bench/run generates; a plan with any other
-- target set counts as wrong. bytes_per_plan: growth of the peak RSS over
-- the RSS before the first plan, divided by the plans in flight.
local mxroute = require "mxroute"

local server, conc, file, mode = arg[1], tonumber(arg[2]), arg[3], arg[4] or "loop"
local max_inflight = tonumber(arg[5]) -- the exchange's bound on queries in flight
assert(server and conc and file, "usage: bench.lua SERVER:PORT CONCURRENCY DOMAINFILE [MODE]")

local domains = {}
for line in io.lines(file) do
  if line ~= "" then domains[#domains + 1] = line end
end

local cqueues
if mode == "cqueues" then cqueues = require "cqueues" end

-- The clock, chosen (and cqueues loaded) once, before the memory
-- baseline: the library's 3.9 MB are not mxroute's memory per plan.
local now = os.clock
do
  local ok, cq = pcall(require, "cqueues")
  if ok then now = cq.monotime end
end

local function status_kib(field)
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end

-- The four targets of dN in the generated zone (bench/run), address ->
-- host (mx1 has preference 10, mx2 20), made before the clock starts
-- (the clients compared do no such check). Kept cheap: it runs under
-- callgrind with the loop.
local expect, mx1_of = {}, {}
local dec = {}
for k = 1, 250 do dec[k] = tostring(k) end
for _, d in ipairs(domains) do
  local num = d:match("^d(%d+)%.")
  if num then
    local i = tonumber(num)
    local b, a = dec[math.floor(i / 250) % 250 + 1], dec[i % 250 + 1]
    local x = ("%x"):format(i)
    local mx1, mx2 = "mx1.d" .. num .. ".bench.test", "mx2.d" .. num .. ".bench.test"
    expect[d] = {
      ["198.51." .. b .. "." .. a] = mx1,
      ["2001:db8:" .. x .. "::" .. x] = mx1,
      ["203.0." .. b .. "." .. a] = mx2,
      ["2001:db8:" .. x .. "::1:" .. x] = mx2,
    }
    mx1_of[d] = mx1
  end
end

-- Each address once, on its host, with the host's preference; a plan is
-- checked once (its expected entries are used up).
local function plan_ok(domain, plan)
  local want, ts = expect[domain], plan.targets
  if not want or #ts ~= 4 then return false end
  local mx1 = mx1_of[domain]
  for k = 1, 4 do
    local t = ts[k]
    local addr = t.addr
    local host = want[addr]
    if host ~= t.host or t.pref ~= (host == mx1 and 10 or 20) then return false end
    want[addr] = false
  end
  return true
end
local r = mxroute.resolver { nameservers = { server }, timeout = 2, tries = 3, cache = false,
                             max_inflight = max_inflight }
local nexti, finished, failed, wrong, targets = 0, 0, 0, 0, 0
local function account(domain, plan)
  finished = finished + 1
  if plan then
    targets = targets + #plan.targets
    if not plan_ok(domain, plan) then wrong = wrong + 1 end
  else
    failed = failed + 1
  end
end

local rss0 = status_kib("VmRSS")
local c0 = os.clock()
local t0 = now()
if mode == "setup" then
  r:close()
  return
end
if mode == "cqueues" then
  local cq = cqueues.new()
  for _ = 1, conc do
    cq:wrap(function()
      while nexti < #domains do
        nexti = nexti + 1
        local d = domains[nexti]
        account(d, r:resolve(d))
      end
    end)
  end
  assert(cq:loop())
else
  local function submit_next()
    nexti = nexti + 1
    local d = domains[nexti]
    if d then r:submit(d, function(plan) account(d, plan); submit_next() end) end
  end
  for _ = 1, conc do submit_next() end
  while finished < #domains do
    r:step(r:timeout() or 1)
  end
end
local t1 = now()
local cpu = os.clock() - c0
local peak = status_kib("VmHWM")
print(("mxroute %s: plans=%d failed=%d wrong=%d seconds=%.3f plans_per_s=%.0f targets=%d"
  .. " peak_kib=%d bytes_per_plan=%.0f cpu_us_per_plan=%.1f lua_kib=%.0f")
  :format(mode, finished, failed, wrong, t1 - t0, finished / (t1 - t0), targets,
          peak, (peak - rss0) * 1024 / math.min(conc, #domains), cpu * 1e6 / finished,
          collectgarbage("count")))
r:close()
if mode ~= "loop" then return end

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
