-- The cache and TTLs (DESIGN 8) through a real caching resolver: Unbound
-- (spec/support/unbound.lua) in front of the test Knot, as deployments
-- run it beside the MTA. Unbound counts TTLs down between answers, and
-- mxroute's cache keeps what is left. Waits are sleeps past a TTL; no
-- assertion is about how long anything took.
local knot = require "support.knot"
local unbound = require "support.unbound"
local uv = require "luv"
local mxroute = require "mxroute"

local function sleep(s) uv.sleep(math.floor(s * 1000)) end

describe("through Unbound", function()
  local u

  -- a fresh Unbound for each test: its cache starts empty
  before_each(function() u = unbound.start { upstream = knot.shared() } end)
  after_each(function() if u then u.stop() end end)

  local function resolver(cache, extra)
    local o = { nameservers = { u.addr }, timeout = 0.5, tries = 1, cache = cache }
    for k, v in pairs(extra or {}) do o[k] = v end
    return mxroute.resolver(o)
  end

  it("reports TTLs that count down between Unbound's answers", function()
    local r = resolver(false)
    local p1 = assert(r:resolve("short.ttl.test"))
    assert.is_true(p1.ttl >= 1 and p1.ttl <= 2, "ttl " .. p1.ttl)
    sleep(1.1)
    local p2 = assert(r:resolve("short.ttl.test"))
    assert.is_true(p2.ttl < p1.ttl, p2.ttl .. " after " .. p1.ttl)
    r:close()
  end)

  it("keeps what is left of Unbound's TTL in its own cache", function()
    local r = resolver(true)
    local p1 = assert(r:resolve("short.ttl.test"))
    local p2 = assert(r:resolve("short.ttl.test"))
    assert.is_true(p2.ttl <= p1.ttl)
    assert.equal(3, r:cache_stats().hits)
    sleep(2.1) -- past the 2 s Unbound gave at most
    local p3 = assert(r:resolve("short.ttl.test"))
    assert.is_true(p3.ttl <= 2)
    assert.is_true(r:cache_stats().misses > 3)
    r:close()
  end)

  it("gets negative TTLs from Unbound's SOA (NXDOMAIN and NODATA) and caches them", function()
    local r = resolver(true)
    local _, _, code, info = r:resolve("nosuch.negttl.test")
    assert.equal("NXDOMAIN", code)
    assert.is_true(info.ttl >= 1 and info.ttl <= 2, "ttl " .. tostring(info.ttl))
    local _, _, code2, info2 = r:resolve("nodata.negttl.test")
    assert.equal("NOHOSTS", code2)
    assert.is_true(info2.ttl >= 1 and info2.ttl <= 2, "ttl " .. tostring(info2.ttl))
    local _, _, code3 = r:resolve("nosuch.ttl.test") -- MINIMUM 1 < SOA TTL
    assert.equal("NXDOMAIN", code3)
    local misses = r:cache_stats().misses
    assert.equal("NXDOMAIN", select(3, r:resolve("nosuch.negttl.test")))
    assert.equal(misses, r:cache_stats().misses)
    r:close()
  end)

  it("reports the lowest TTL along a CNAME chain", function()
    local r = resolver(true)
    local p = assert(r:resolve("chain.ttl.test"))
    assert.equal(1, p.ttl)
    assert.equal("mx.short.ttl.test", p.hosts[1].name)
    r:close()
  end)

  it("plans from its cache when Unbound goes away, and fails once entries expire", function()
    local r = resolver(true, { family = "ipv4" })
    local p1 = assert(r:resolve("pair.ttl.test"))
    assert(r:resolve("one.ttl.test"))
    u.stop()
    local p2 = assert(r:resolve("pair.ttl.test"))
    assert.same(#p1.targets, #p2.targets)
    sleep(1.1) -- one.ttl.test: every TTL is over
    local p3, _, code = r:resolve("one.ttl.test")
    assert.is_nil(p3)
    assert.equal("temporary", mxroute.class(code))
    r:close()
  end)

  it("serves stale data when Unbound has gone away, if asked to", function()
    local r = resolver({ stale = 30 }, { family = "ipv4" })
    assert(r:resolve("one.ttl.test"))
    u.stop()
    sleep(1.1)
    local p = assert(r:resolve("one.ttl.test"))
    assert.is_true(p.stale)
    assert.equal("192.0.2.88", p.targets[1].addr)
    r:close()
  end)
end)
