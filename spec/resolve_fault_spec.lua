-- End-to-end resolution against the fault server (spec/support/fault.lua):
-- every kind of failure gives the right code and class, never data, never
-- a crash or a hang; and the query log shows what was asked, over which
-- protocol, and when (DESIGN section 1, rules 2, 7, 9, 12 and 14).
local fault = require "support.fault"
local cases = require "support.fault_cases"
local plans = require "support.plans"
local util = require "support.util"
local mxroute = require "mxroute"
local uv = require "luv"

local now = util.now
local hosts_of, skipped_of = plans.hosts_of, plans.skipped_of

-- The shared fault cases (support/fault_cases.lua), and what only the
-- core resolver is checked against.
local RULES = cases.rules {
  -- host lookups failing
  ["hostfail.test"] = { MX = { { 10, "asf.hostfail.test" }, { 20, "aaaadrop.hostfail.test" },
                               { 30, "good.hostfail.test" } } },
  ["asf.hostfail.test"] = { A = "192.0.2.11", types = { A = { rcode = "SERVFAIL" } } },
  ["aaaadrop.hostfail.test"] = { AAAA = "2001:db8::12", types = { AAAA = { drop = true } } },
  ["good.hostfail.test"] = { A = "192.0.2.13" },

  ["alltemp.test"] = { MX = { { 10, "sf.alltemp.test" }, { 20, "to.alltemp.test" },
                              { 30, "gone.alltemp.test" } } },
  ["sf.alltemp.test"] = { A = "192.0.2.14", rcode = "SERVFAIL" },
  ["to.alltemp.test"] = { A = "192.0.2.15", drop = true },
  -- gone.alltemp.test is not listed: NXDOMAIN

  -- an MX host that is a CNAME
  ["cnamehost.test"] = { MX = { { 10, "alias.cnamehost.test" } } },
  ["alias.cnamehost.test"] = { CNAME = "real.cnamehost.test" },
  ["real.cnamehost.test"] = { A = "192.0.2.31", AAAA = "2001:db8::31" },

  -- an MX exchange with a backslash in a label: asked as it is
  ["bs.test"] = { MX = { { 10, "a\\b.bs.test" } } },
  ["a\\b.bs.test"] = { A = "192.0.2.51" },

  -- slow, but in time
  ["slow.test"] = { MX = { { 10, "slowhost.slow.test" } }, delay = 100 },
  ["slowhost.slow.test"] = { A = "192.0.2.41", delay = 100 },

  -- bounded work
  ["bounded.test"] = { MX = { { 10, "a.bounded.test" }, { 20, "b.bounded.test" },
                              { 30, "c.bounded.test" } } },
  ["a.bounded.test"] = { A = "192.0.2.51" },
  ["b.bounded.test"] = { A = "192.0.2.52" },
  ["c.bounded.test"] = { A = "192.0.2.53" },
}

describe("resolution against the fault server", function()
  local f

  setup(function() f = fault.start(RULES) end)
  teardown(function() if f then f.stop() end end)

  local function resolver(opts)
    return plans.resolver({ nameservers = { f.addr }, timeout = 0.3, tries = 1 }, opts)
  end

  -- Resolve on a fresh resolver; also returns the seconds it took.
  local function resolve(input, opts)
    local r = resolver(opts)
    local t0 = now()
    local p, msg, code, info = r:resolve(input)
    local dt = now() - t0
    assert.equal(0, r:pending())
    r:close()
    return p, msg, code, info, dt
  end

  local function ok(input, opts)
    local p, msg, code, _, dt = resolve(input, opts)
    assert(p, ("%s: expected a plan, got %s: %s"):format(input, tostring(code), tostring(msg)))
    return p, dt
  end

  -- A failure with code `want` (or one of a list) and class `class`.
  local function fails(want, class, input, opts)
    local p, msg, code, info, dt = resolve(input, opts)
    assert.is_nil(p, input .. ": expected a failure, got a plan")
    if type(want) == "table" then
      local found = false
      for _, w in ipairs(want) do found = found or w == code end
      assert.is_true(found, input .. ": unexpected code " .. tostring(code))
    else
      assert.equal(want, code)
    end
    assert.equal(class, mxroute.class(code))
    assert.equal("string", type(msg))
    assert.is_true(#msg > 0)
    assert.is_true(dt < 2, input .. " took " .. dt .. " s")
    return msg, info, dt, code
  end

  local function types_asked(name)
    local t = {}
    for _, e in ipairs(f.queries(name)) do t[#t + 1] = e.type end
    return t
  end

  local OK_HOSTS = cases.OK_HOSTS

  it("resolves the working domain (the baseline of every fault)", function()
    assert.same(OK_HOSTS, hosts_of(ok("ok.test")))
  end)

  describe("a failed MX lookup", function()
    local CASES = {
      { "servfail.test", "SERVFAIL", "temporary" },
      { "refused.test", "REFUSED", "temporary" },
      { "nxdomain.test", "NXDOMAIN", "permanent" },
      { "drop.test", "TIMEOUT", "temporary" },
      { "formerr.test", "FORMERR", "temporary" },
    }
    for _, c in ipairs(CASES) do
      local name, code, class = c[1], c[2], c[3]
      it("is " .. code .. " (" .. class .. ") for " .. name .. ", with no A/AAAA query", function()
        local msg = fails(code, class, "user@" .. name)
        assert.truthy(msg:find(name, 1, true))
        local asked = types_asked(name)
        assert.is_true(#asked >= 1)
        for _, t in ipairs(asked) do assert.equal("MX", t) end
      end)
    end

    it("times out after the configured timeout, not sooner", function()
      local _, _, dt = fails("TIMEOUT", "temporary", "drop.test")
      assert.is_true(dt >= 0.25 and dt < 1.0, "took " .. dt .. " s")
    end)
  end)

  describe("a broken reply", function()
    -- the exchange drops a reply shorter than a DNS header and waits on: the
    -- resolution times out
    for _, name in ipairs { "short.test", "short11.test", "empty.test" } do
      it("is TIMEOUT (temporary) for a short packet: " .. name, function()
        fails("TIMEOUT", "temporary", name)
        assert.equal(1, #f.replies(name))
      end)
    end

    for _, name in ipairs { "truncated.test", "count.test", "nameloop.test", "rdlength.test" } do
      it("is FORMERR (temporary), never data, for a malformed answer: " .. name, function()
        fails("FORMERR", "temporary", name)
        assert.same({ "MX" }, types_asked(name))
      end)
    end

    it("is TIMEOUT when the only reply has a wrong ID", function()
      fails("TIMEOUT", "temporary", "wrongid.test")
      assert.equal(1, #f.replies("wrongid.test"))
    end)

    it("takes the right reply that follows one with a wrong ID", function()
      local p = ok("wrongid-ok.test")
      assert.same(OK_HOSTS, hosts_of(p))
      local reps = f.replies("wrongid-ok.test")
      assert.equal(2, #reps)
      assert.equal("wrong_id", reps[1].action)
      assert.equal("then_ok", reps[2].action)
      assert.is_true(reps[1].id ~= reps[2].id)
    end)

    it("is FORMERR for the query echoed back with QR=0", function()
      fails("FORMERR", "temporary", "qr0.test")
    end)

    it("is FORMERR for a reply with another opcode", function()
      fails("FORMERR", "temporary", "opcode.test")
    end)

    for rc = 6, 15 do
      local name = ("rcode%d.test"):format(rc)
      it("is FORMERR, never data, for the unassigned rcode " .. rc, function()
        fails("FORMERR", "temporary", name)
        assert.same({ "MX" }, types_asked(name))
      end)
    end

    -- c-ares matches the question itself and ignores a reply to another
    -- one, so these time out
    for _, name in ipairs { "wrongname.test", "wrongtype.test", "noquestion.test" } do
      it("is TIMEOUT (temporary), never data, for a wrong question: " .. name, function()
        fails("TIMEOUT", "temporary", name)
        assert.equal(1, #f.replies(name))
      end)
    end

    it("is FORMERR for MX records owned by another name", function()
      local msg = fails("FORMERR", "temporary", "foreign.test")
      assert.truthy(msg:find("evil.test", 1, true))
      -- the foreign MX's exchange is never looked up
      local asked_at = f.queries("foreign.test")[1].t
      for _, e in ipairs(f.queries("mx.ok.test")) do
        assert.is_true(e.t < asked_at, "mx.ok.test looked up after foreign.test")
      end
    end)
  end)

  describe("truncation", function()
    it("retries a TC answer over TCP and uses the TCP answer", function()
      cases.assert_tc(ok("tc.test"), f)
    end)
  end)

  describe("failed host lookups", function()
    it("skips each failing host with its code and uses the others", function()
      local p = ok("hostfail.test")
      assert.same({ { name = "good.hostfail.test", pref = 30, addrs = { "192.0.2.13" } } }, hosts_of(p))
      assert.same({
        { name = "asf.hostfail.test", pref = 10, code = "SERVFAIL" },
        { name = "aaaadrop.hostfail.test", pref = 20, code = "TIMEOUT" },
      }, skipped_of(p))
      assert.same({ { host = "good.hostfail.test", pref = 30, addr = "192.0.2.13", family = "ipv4",
                      port = 25 } }, p.targets)
    end)

    it("is temporary when every host fails, temporarily or not", function()
      -- either temporary code will do (DESIGN: temporary beats permanent)
      local _, info = fails({ "SERVFAIL", "TIMEOUT" }, "temporary", "alltemp.test")
      assert.same({
        { name = "sf.alltemp.test", pref = 10, code = "SERVFAIL" },
        { name = "to.alltemp.test", pref = 20, code = "TIMEOUT" },
        { name = "gone.alltemp.test", pref = 30, code = "NXDOMAIN" },
      }, skipped_of(info))
    end)
  end)

  describe("round trips (rule 7)", function()
    it("sends every A/AAAA query of a plan before any host answer comes back", function()
      local p, dt = ok("parallel.test", { timeout = 1 })
      cases.assert_parallel(p, f)
      assert.equal(1, #f.queries { name = "parallel.test", type = "MX" })
      -- the host answers cost one delayed round trip, not one per query
      assert.is_true(dt >= 0.2 and dt < 1.0, "took " .. dt .. " s")
    end)
  end)

  describe("answers that are fine", function()
    it("follows a CNAME'd MX host to its addresses, keeping the MX name", function()
      local p = ok("cnamehost.test")
      assert.same({ { name = "alias.cnamehost.test", pref = 10,
                      addrs = { "192.0.2.31", "2001:db8::31" } } }, hosts_of(p))
    end)

    it("asks for an exchange with a backslash in a label as it is (escaped for c-ares)", function()
      local p = ok("bs.test")
      assert.same({ { name = "a\\b.bs.test", pref = 10, addrs = { "192.0.2.51" } } }, hosts_of(p))
    end)

    it("accepts answers delayed by less than the timeout", function()
      local p, dt = ok("slow.test", { timeout = 0.5 })
      assert.same({ { name = "slowhost.slow.test", pref = 10, addrs = { "192.0.2.41" } } }, hosts_of(p))
      assert.is_true(dt >= 0.2, "took " .. dt .. " s")
    end)

    it("looks up no host beyond max_hosts", function()
      local p = ok("bounded.test", { max_hosts = 1 })
      assert.same({ { name = "a.bounded.test", pref = 10, addrs = { "192.0.2.51" } } }, hosts_of(p))
      assert.equal(2, #f.queries("a.bounded.test"))
      assert.equal(0, #f.queries("b.bounded.test"))
      assert.equal(0, #f.queries("c.bounded.test"))
    end)

    it("sends no query for invalid input or an address literal", function()
      local before = #f.queries()
      local r = resolver()
      for _, input in ipairs { "user@", "", "u@ok.test.", "a..ok.test", "bad name.test" } do
        local p, _, code = r:resolve(input)
        assert.is_nil(p)
        assert.equal("BADNAME", code)
      end
      local p = r:resolve("user@[192.0.2.99]")
      assert.equal("192.0.2.99", p.targets[1].addr)
      r:close()
      uv.sleep(50)
      assert.equal(before, #f.queries())
    end)
  end)
end)
