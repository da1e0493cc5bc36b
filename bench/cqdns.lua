--- bench/cqdns.lua — the Lua peer: cqueues.dns doing the same queries as
-- raw_cares.c (MX, then A and AAAA of every exchange), no planning.
--
--   lua5.4 bench/cqdns.lua SERVER:PORT CONCURRENCY DOMAINFILE
--
-- CONCURRENCY cqueues threads, each with its own stub resolver, resolving
-- domains one after the other; a plan's four host queries run as four
-- threads at once (like c-ares' callbacks in raw_cares.c).
local cqueues = require "cqueues"
local resolver = require "cqueues.dns.resolver"
local config = require "cqueues.dns.config"

local server, conc, file = arg[1], tonumber(arg[2]), arg[3]
assert(server and conc and file, "usage: cqdns.lua SERVER:PORT CONCURRENCY DOMAINFILE")
local host, port = server:match("^(.*):(%d+)$")

local domains = {}
for line in io.lines(file) do
  if line ~= "" then domains[#domains + 1] = line end
end

local function stub()
  local cfg = config.new { nameserver = { "[" .. host .. "]:" .. port }, search = {},
                           ndots = 1, timeout = 2, attempts = 3 }
  return resolver.new(cfg)
end

local cq = cqueues.new()
local nexti, finished, failed = 0, 0, 0
local t0 = cqueues.monotime()
for _ = 1, conc do
  cq:wrap(function()
    local res = { stub(), stub(), stub(), stub(), stub() }
    while nexti < #domains do
      nexti = nexti + 1
      local ok = false
      local pkt = res[5]:query(domains[nexti] .. ".", "MX", "IN", 2)
      if pkt then
        local hosts = {}
        for rr in pkt:grep { section = "answer", type = "MX" } do
          hosts[#hosts + 1] = rr:host()
        end
        local pending = 0
        local cond = require("cqueues.condition").new()
        local answers = 0
        for h, name in ipairs(hosts) do
          for k, qt in ipairs { "A", "AAAA" } do
            local rs = res[((h - 1) * 2 + k - 1) % 4 + 1]
            pending = pending + 1
            cqueues.running():wrap(function()
              local p = rs:query(name, qt, "IN", 2)
              if p then
                for _ in p:grep { section = "answer" } do answers = answers + 1 end
              end
              pending = pending - 1
              if pending == 0 then cond:signal() end
            end)
          end
        end
        if pending > 0 then cond:wait() end
        ok = #hosts > 0 and answers > 0
      end
      finished = finished + 1
      if not ok then failed = failed + 1 end
    end
  end)
end
assert(cq:loop())
local t1 = cqueues.monotime()
print(("cqueues.dns: plans=%d failed=%d seconds=%.3f plans_per_s=%.0f")
  :format(finished, failed, t1 - t0, finished / (t1 - t0)))
