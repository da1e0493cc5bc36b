--- bench/cache_bench.lua — plans per second with the cache on and off
-- (bench/cache_run).
--
--   lua5.4 bench/cache_bench.lua SERVER:PORT CONCURRENCY REQUESTFILE on|off
--
-- One resolver resolves every line of REQUESTFILE, CONCURRENCY plans in
-- flight (a callback submits the next), and prints one line with the
-- rate and the cache's counters.
local mxroute = require "mxroute"

local server, conc, file, mode = arg[1], tonumber(arg[2]), arg[3], arg[4]
assert(server and conc and file and (mode == "on" or mode == "off"),
  "usage: cache_bench.lua SERVER:PORT CONCURRENCY REQUESTFILE on|off")

local reqs = {}
for line in io.lines(file) do
  if line ~= "" then reqs[#reqs + 1] = line end
end

local uv_ok, uv = pcall(require, "luv")
local function now()
  if uv_ok then return uv.hrtime() / 1e9 end
  return os.clock()
end

local r = mxroute.resolver { nameservers = { server }, timeout = 2, tries = 3,
                             cache = mode == "on" }
local nexti, finished, failed = 0, 0, 0
local function submit_next(cb)
  nexti = nexti + 1
  if nexti <= #reqs then r:submit(reqs[nexti], cb) end
end
local function on_done(plan)
  finished = finished + 1
  if not plan then failed = failed + 1 end
  submit_next(on_done)
end

local t0 = now()
for _ = 1, conc do submit_next(on_done) end
while finished < #reqs do r:step(r:timeout() or 1) end
local t1 = now()
local s = r:cache_stats()
print(("cache %-3s plans=%d failed=%d seconds=%.3f plans_per_s=%.0f hits=%d misses=%d entries=%d")
  :format(mode, finished, failed, t1 - t0, finished / (t1 - t0), s.hits, s.misses, s.entries))
r:close()
