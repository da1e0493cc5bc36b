-- The cache and TTLs (DESIGN 8) against the real authoritative server
-- (Knot) serving spec/zones: ttl.test and negttl.test have TTLs of 1-3 s
-- (see spec/zones/README.md), so entries expire within a spec. Waits are
-- plain sleeps past a TTL; no assertion is about how long anything took.
local knot = require "support.knot"
local util = require "support.util"
local uv = require "luv"
local mxroute = require "mxroute"

local function sleep(s) uv.sleep(math.floor(s * 1000)) end

-- The plan's addresses, sorted (their order is random).
local function addrs_of(p)
  local out = {}
  for i, t in ipairs(p.targets) do out[i] = t.addr end
  table.sort(out)
  return out
end

describe("the cache", function()
  local srv

  setup(function() srv = knot.shared() end)

  local function resolver(cache, extra)
    local o = { nameservers = { srv.addr }, timeout = 0.5, tries = 1, cache = cache }
    for k, v in pairs(extra or {}) do o[k] = v end
    return mxroute.resolver(o)
  end

  describe("plan.ttl", function()
    it("is the lowest TTL of the records the plan used", function()
      local r = resolver(false)
      local p = assert(r:resolve("short.ttl.test"))
      assert.equal(2, p.ttl) -- MX 3, A and AAAA 2
      r:close()
    end)

    it("is the lowest TTL along a CNAME chain", function()
      local r = resolver(false)
      local p = assert(r:resolve("chain.ttl.test"))
      assert.equal(1, p.ttl)
      assert.same({ "192.0.2.81", "2001:db8::81" }, addrs_of(p))
      r:close()
    end)

    it("counts a negative answer: the implicit MX's NODATA", function()
      local r = resolver(false)
      local p = assert(r:resolve("nomx.ttl.test"))
      assert.is_true(p.implicit)
      assert.equal(1, p.ttl) -- NODATA for MX: min(SOA TTL 3600, MINIMUM 1)
      r:close()
    end)

    it("is in the failure's info for NXDOMAIN: SOA MINIMUM below the SOA TTL", function()
      local r = resolver(false)
      local p, _, code, info = r:resolve("nosuch.ttl.test")
      assert.is_nil(p)
      assert.equal("NXDOMAIN", code)
      assert.equal(1, info.ttl)
      r:close()
    end)

    it("is in the failure's info for NXDOMAIN and NODATA: SOA TTL below MINIMUM", function()
      local r = resolver(false)
      local _, _, code, info = r:resolve("nosuch.negttl.test")
      assert.equal("NXDOMAIN", code)
      assert.equal(2, info.ttl)
      _, _, code, info = r:resolve("nodata.negttl.test")
      assert.equal("NOHOSTS", code)
      assert.equal(2, info.ttl)
      r:close()
    end)

    it("is absent for an address literal (no DNS) and from temporary failures", function()
      local r = resolver(false)
      local p = assert(r:resolve("user@[192.0.2.1]"))
      assert.is_nil(p.ttl)
      r:close()
      r = mxroute.resolver { nameservers = { "127.0.0.1:" .. util.dead_port() },
                             timeout = 0.2, tries = 1 }
      local _, _, code, info = r:resolve("short.ttl.test")
      assert.equal("temporary", mxroute.class(code))
      assert.is_nil(info.ttl)
      r:close()
    end)
  end)

  describe("hits and expiry", function()
    it("answers a repeated plan from the cache, TTLs counting down, until they expire", function()
      local r = resolver(true)
      local p1 = assert(r:resolve("short.ttl.test"))
      local s1 = r:cache_stats()
      assert.same({ hits = 0, misses = 3, entries = 3, evictions = 0, stale = 0,
                    inserts = 3, merged = 0 }, s1)
      sleep(1.1)
      local p2 = assert(r:resolve("Short.TTL.test."))
      local s2 = r:cache_stats()
      assert.equal(3, s2.hits)
      assert.equal(3, s2.misses)
      assert.is_true(p2.ttl < p1.ttl, "the TTL counts down")
      sleep(2.1) -- past every TTL
      assert(r:resolve("short.ttl.test"))
      local s3 = r:cache_stats()
      assert.equal(3, s3.hits)
      assert.equal(6, s3.misses)
      r:close()
    end)

    it("shares cached host addresses between domains of one provider", function()
      local r = resolver(true, { family = "ipv4" })
      assert(r:resolve("shared1.ttl.test"))
      assert(r:resolve("shared2.ttl.test"))
      local s = r:cache_stats()
      assert.equal(1, s.hits)   -- mx.provider's A
      assert.equal(3, s.misses) -- two MX and one A
      r:close()
    end)

    it("caches NXDOMAIN and NODATA for their negative TTL", function()
      local r = resolver(true)
      for _ = 1, 2 do
        assert.equal("NXDOMAIN", select(3, r:resolve("nosuch.negttl.test")))
        assert.equal("NOHOSTS", select(3, r:resolve("nodata.negttl.test")))
      end
      local s = r:cache_stats()
      assert.equal(4, s.misses) -- nosuch MX; nodata MX, A, AAAA
      assert.equal(4, s.hits)
      sleep(2.1)
      assert.equal("NXDOMAIN", select(3, r:resolve("nosuch.negttl.test")))
      assert.equal(5, r:cache_stats().misses)
      r:close()
    end)

    it("caches each step of a CNAME chain", function()
      local r = resolver(true)
      local p1 = assert(r:resolve("chain.ttl.test"))
      local misses = r:cache_stats().misses
      local p2 = assert(r:resolve("chain.ttl.test"))
      assert.equal(misses, r:cache_stats().misses)
      assert.same(p1.hosts[1].name, p2.hosts[1].name)
      assert.is_true(p2.ttl <= 1)
      r:close()
    end)

    it("draws equal preferences and addresses anew for every cached plan", function()
      local r = resolver(true, { family = "ipv4" })
      local RUNS = 600
      local first_host, first_addr = {}, {}
      for _ = 1, RUNS do
        local p = assert(r:resolve("pair.ttl.test"))
        local h = p.hosts[1].name
        first_host[h] = (first_host[h] or 0) + 1
        first_addr[p.targets[1].addr] = (first_addr[p.targets[1].addr] or 0) + 1
      end
      -- 3 RRsets asked once, then from the cache (TTL 300)
      assert.equal(3, r:cache_stats().misses)
      assert.equal(3 * (RUNS - 1), r:cache_stats().hits)
      -- uniform: 300 +- 75 (six standard deviations) for each host, and
      -- 150 +- 60 for each of the four first addresses
      for _, h in ipairs { "a.pair.ttl.test", "b.pair.ttl.test" } do
        local n = first_host[h] or 0
        assert(n > 225 and n < 375, h .. " first " .. n .. " times of " .. RUNS)
      end
      for _, a in ipairs { "192.0.2.82", "192.0.2.83", "192.0.2.84", "192.0.2.85" } do
        local n = first_addr[a] or 0
        assert(n > 90 and n < 210, a .. " first " .. n .. " times of " .. RUNS)
      end
      r:close()
    end)
  end)

  describe("settings", function()
    it("is on by default and off with cache = false", function()
      local r = resolver(nil)
      assert(r:resolve("pair.ttl.test"))
      assert.is_true(r:cache_stats().entries > 0)
      r:close()
      r = resolver(false)
      assert(r:resolve("pair.ttl.test"))
      assert(r:resolve("pair.ttl.test"))
      assert.same({ hits = 0, misses = 0, entries = 0, evictions = 0, stale = 0,
                    inserts = 0, merged = 0 }, r:cache_stats())
      assert.equal(0, r:flush())
      r:close()
    end)

    it("is bounded by size, evicting the least recently used", function()
      local r = resolver({ size = 2 }, { family = "ipv4" })
      assert(r:resolve("pair.ttl.test")) -- MX, a.pair A, b.pair A
      local s = r:cache_stats()
      assert.equal(2, s.entries)
      assert.equal(1, s.evictions)
      r:close()
    end)

    it("raises TTLs to min_ttl and lowers them to max_ttl", function()
      local r = resolver({ min_ttl = 100 })
      assert.equal(100, assert(r:resolve("short.ttl.test")).ttl)
      r:close()
      r = resolver({ max_ttl = 1 }, { family = "ipv4" })
      assert.equal(1, assert(r:resolve("pair.ttl.test")).ttl)
      r:close()
    end)

    it("flushes one name or everything", function()
      local r = resolver(true, { family = "ipv4" })
      assert(r:resolve("pair.ttl.test"))
      assert.equal(3, r:cache_stats().entries)
      assert.equal(1, r:flush("PAIR.ttl.test."))
      assert.equal(0, r:flush("pair.ttl.test"))
      assert.equal(2, r:flush())
      assert.equal(0, r:cache_stats().entries)
      assert.has_error(function() r:flush(42) end, "mxroute: flush: name must be a string")
      assert.has_error(function() r:flush("a..b") end)
      r:close()
    end)

    it("refuses bad settings, naming the field", function()
      local function err(cache)
        local ok, e = pcall(mxroute.resolver, { nameservers = { srv.addr }, cache = cache })
        assert.is_false(ok)
        return e
      end
      assert.matches("option 'cache': expected a boolean or a table", err("yes"))
      assert.matches("option 'cache': unknown field 'ttl'", err({ ttl = 1 }))
      assert.matches("option 'cache.size': expected an integer 1..", err({ size = 0 }))
      assert.matches("option 'cache.size': expected an integer", err({ size = 1.5 }))
      assert.matches("option 'cache.stale': expected an integer 0..", err({ stale = -1 }))
      assert.matches("option 'cache.max_ttl'", err({ max_ttl = 0 }))
      assert.matches("option 'cache.min_ttl': more than max_ttl", err({ min_ttl = 10, max_ttl = 5 }))
      assert.matches("option 'cache.min_ttl': more than max_ttl", err({ min_ttl = 86401 }))
    end)
  end)

  describe("when the server goes away", function()
    local own

    before_each(function() own = knot.start {} end)
    after_each(function() if own then own.stop() end end)

    local function resolver_at(cache)
      return mxroute.resolver { nameservers = { own.addr }, timeout = 0.3, tries = 1,
                                cache = cache }
    end

    it("plans from the cache while entries are valid, then fails temporarily", function()
      local r = resolver_at(true)
      local p1 = assert(r:resolve("pair.ttl.test")) -- MX and A: 300 s
      assert(r:resolve("one.ttl.test"))               -- everything: 1 s
      own.stop()
      local p2 = assert(r:resolve("pair.ttl.test"))
      assert.same(addrs_of(p1), addrs_of(p2))
      assert.is_nil(p2.stale)
      sleep(1.1) -- past every TTL of one.ttl.test
      local p3, _, code, info = r:resolve("one.ttl.test")
      assert.is_nil(p3)
      assert.equal("temporary", mxroute.class(code))
      assert.is_nil(info.ttl)
      r:close()
    end)

    it("serves expired data within the stale window, marked stale", function()
      local r = resolver_at({ stale = 60 })
      assert(r:resolve("one.ttl.test"))
      own.stop()
      sleep(1.1)
      local p = assert(r:resolve("one.ttl.test"))
      assert.is_true(p.stale)
      assert.equal("mx.one.ttl.test", p.hosts[1].name)
      assert.is_true(p.ttl <= 30) -- RFC 8767: stale data is given 30 s at most
      assert.equal(3, r:cache_stats().stale) -- MX, A, AAAA (NODATA)
      r:close()
    end)

    it("does not serve stale data past the window", function()
      local r = resolver_at({ stale = 1 })
      assert(r:resolve("one.ttl.test"))
      own.stop()
      sleep(2.2) -- expired 1.2 s ago, beyond 1 s of staleness
      local p, _, code = r:resolve("one.ttl.test")
      assert.is_nil(p)
      assert.equal("temporary", mxroute.class(code))
      r:close()
    end)
  end)

  describe("the CLI", function()
    it("resolves later recipients at a domain from the cache of its run", function()
      local fault = require "support.fault"
      local f = fault.start {
        ["many.test"] = { MX = { { 10, "mx.many.test" } } },
        ["mx.many.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
      }
      local args = {}
      for i = 1, 100 do args[i] = "u" .. i .. "@many.test" end
      local out = util.capture(("%s bin/mxroute --json --nameserver %s %s 2>&1")
        :format(util.interpreter(), f.addr, table.concat(args, " ")))
      local mx = #f.queries { name = "many.test", type = "MX" }
      f.stop()
      assert.equal(100, select(2, out:gsub('"status":"ok"', "")), out)
      -- at most one query per plan in flight at once (the CLI keeps 32);
      -- every later recipient is planned from the cache
      assert.is_true(mx >= 1 and mx <= 32, mx .. " MX queries for 100 recipients")
    end)

    it("prints the plan's ttl in --json, and a failure's", function()
      local cmd = ("%s bin/mxroute --json --nameserver %s short.ttl.test nosuch.negttl.test 2>&1")
        :format(util.interpreter(), srv.addr)
      local out = util.capture(cmd)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(2, #lines, out)
      assert.matches('"ttl":2[,}]', lines[1])
      assert.matches('"code":"NXDOMAIN"', lines[2])
      assert.matches('"ttl":2[,}]', lines[2])
    end)
  end)
end)
