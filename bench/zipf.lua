--- bench/zipf.lua — the cache benchmark's workload (bench/cache_run).
--
--   lua5.4 bench/zipf.lua ZONEFILE REQUESTFILE DOMAINS REQUESTS
--
-- A zone `zipf.test` of DOMAINS domains where most share a few large
-- providers' MX hosts, as mail does: 9 of 10 domains point at one of 8
-- providers (two MX hosts each, A + AAAA per host), the rest have their
-- own MX host. Then REQUESTS recipient domains drawn with a Zipf-like
-- distribution (the k-th most popular domain weighs 1/k), from a fixed
-- seed so that every run asks the same sequence.
local zonefile, reqfile, ndom, nreq = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
assert(zonefile and reqfile and ndom and nreq, "usage: zipf.lua ZONEFILE REQUESTFILE DOMAINS REQUESTS")

local PROVIDERS = 8
local z = assert(io.open(zonefile, "w"))
z:write("$TTL 3600\n@ SOA ns.zipf.test. hostmaster.zipf.test. 1 3600 600 86400 300\n",
        "@ NS ns\nns A 192.0.2.254\n")
for p = 1, PROVIDERS do
  for h = 1, 2 do
    z:write(("mx%d.p%d A 198.51.100.%d\nmx%d.p%d AAAA 2001:db8:%x::%x\n")
      :format(h, p, p * 2 + h, h, p, p, h))
  end
end
for i = 1, ndom do
  if i % 10 ~= 0 then
    local p = i % PROVIDERS + 1
    z:write(("d%d MX 10 mx1.p%d\nd%d MX 20 mx2.p%d\n"):format(i, p, i, p))
  else
    z:write(("d%d MX 10 mx.d%d\nmx.d%d A 203.0.%d.%d\nmx.d%d AAAA 2001:db8:1:%x::1\n")
      :format(i, i, i, math.floor(i / 250) % 250, i % 250 + 1, i, i))
  end
end
z:close()

-- Zipf (s = 1): cumulative weights, binary search per draw; a small LCG
-- (the same numbers under every Lua)
local cum, total = {}, 0
for k = 1, ndom do total = total + 1 / k; cum[k] = total end
local seed = 12345
local function rand()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local out = assert(io.open(reqfile, "w"))
for _ = 1, nreq do
  local x = rand() * total
  local lo, hi = 1, ndom
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cum[mid] < x then lo = mid + 1 else hi = mid end
  end
  out:write("d", lo, ".zipf.test\n")
end
out:close()
