-- The pure planner, mxroute.plan, rule by rule (DESIGN section 1, rules 1-13).
--
-- Every test builds the DNS facts by hand (MX records, CNAME target,
-- addresses) and checks the whole documented plan, so that removing the
-- rule under test makes it fail.  Randomness is covered in
-- plan_random_spec.lua, input parsing in input_spec.lua.
local mxroute = require "mxroute"
local plans = require "support.plans"

local D = "example.com"

-- MX list from pairs: mxlist(10, "a.test", 20, "b.test").
local function mxlist(...)
  local args, out = { ... }, {}
  for i = 1, #args, 2 do
    out[#out + 1] = { pref = args[i], name = args[i + 1] }
  end
  return out
end

local sorted, family_of, doc = plans.sorted, plans.family_of, plans.doc
local names_of, skipped_of, expected_targets = plans.names_of, plans.skipped_of, plans.expected_targets
local raises_naming = plans.raises_naming

-- Same as doc(), but each host's addresses sorted and targets left out:
-- for hosts whose address order is random.
local function doc_sorted(p)
  local out = doc(p)
  out.hosts, out.targets = plans.hosts_of(p), nil
  return out
end

local function ok_plan(input, opts)
  local p, msg, code = mxroute.plan(input, opts)
  assert(p, "expected a plan, got " .. tostring(code) .. ": " .. tostring(msg))
  assert.same(expected_targets(p), doc(p).targets)
  return p
end

local function fails(expected_code, input, opts)
  local p, msg, code = mxroute.plan(input, opts)
  assert.is_nil(p, "expected failure " .. expected_code)
  assert.equal(expected_code, code)
  assert.equal("string", type(msg))
  assert.is_true(#msg > 0)
  assert.is_nil(msg:find("%c"))
  return msg
end

describe("mxroute.plan", function()

  describe("rule 1: MX records and the CNAME chain", function()
    it("returns the whole documented plan for two MX hosts", function()
      local p = ok_plan {
        domain = "user@example.com",
        mx = mxlist(20, "backup.example.com", 10, "primary.example.com"),
        addrs = {
          ["primary.example.com"] = { "192.0.2.1" },
          ["backup.example.com"] = { "2001:db8::2" },
        },
      }
      assert.same({
        input = "user@example.com", domain = "example.com", implicit = false,
        hosts = {
          { name = "primary.example.com", pref = 10, addrs = { "192.0.2.1" } },
          { name = "backup.example.com", pref = 20, addrs = { "2001:db8::2" } },
        },
        targets = {
          { host = "primary.example.com", pref = 10, addr = "192.0.2.1",
            family = "ipv4" },
          { host = "backup.example.com", pref = 20, addr = "2001:db8::2",
            family = "ipv6" },
        },
        skipped = {},
      }, doc(p))
      assert.is_nil(p.self_pref)
    end)

    it("uses the MX records even when the domain is a CNAME", function()
      local p = ok_plan {
        domain = D, cname = "canonical.example",
        mx = mxlist(10, "mx1.canonical.example"),
        addrs = { ["mx1.canonical.example"] = { "192.0.2.9" },
                  ["canonical.example"] = { "192.0.2.200" } },
      }
      assert.equal("example.com", p.domain)
      assert.is_false(p.implicit)
      assert.same({ { name = "mx1.canonical.example", pref = 10,
                      addrs = { "192.0.2.9" } } }, doc(p).hosts)
    end)
  end)

  describe("rule 2: a failed MX lookup", function()
    it("is permanent NXDOMAIN when the domain does not exist", function()
      local msg = fails("NXDOMAIN", { domain = D, mx = "NXDOMAIN" })
      assert.equal("permanent", mxroute.class("NXDOMAIN"))
      assert.truthy(msg:find("example.com", 1, true))
    end)

    for _, code in ipairs { "SERVFAIL", "REFUSED", "TIMEOUT", "NETWORK",
                            "FORMERR", "CNAMELOOP" } do
      it("is temporary " .. code .. " and names the domain", function()
        local msg = fails(code, { domain = D, mx = code })
        assert.equal("temporary", mxroute.class(code))
        assert.truthy(msg:find("example.com", 1, true))
      end)
    end

    for _, code in ipairs { "NXDOMAIN", "SERVFAIL", "REFUSED", "TIMEOUT" } do
      it("never falls back to the domain's addresses after " .. code,
         function()
        fails(code, { domain = D, mx = code,
                      addrs = { [D] = { "192.0.2.1" } } })
      end)
    end
  end)

  describe("rule 3: implicit MX", function()
    it("uses the domain itself at preference 0 when there is no MX", function()
      local p = ok_plan { domain = "user@Example.COM", mx = false,
                          addrs = { [D] = { "192.0.2.7" } } }
      assert.same({
        input = "user@Example.COM", domain = "example.com", implicit = true,
        hosts = { { name = "example.com", pref = 0, addrs = { "192.0.2.7" } } },
        targets = { { host = "example.com", pref = 0, addr = "192.0.2.7",
                      family = "ipv4" } },
        skipped = {},
      }, doc(p))
    end)

    it("treats an empty MX list like NODATA", function()
      local p = ok_plan { domain = D, mx = {},
                          addrs = { [D] = { "2001:db8::7" } } }
      assert.is_true(p.implicit)
      assert.same({ { name = "example.com", pref = 0,
                      addrs = { "2001:db8::7" } } }, doc(p).hosts)
    end)

    it("treats the code NODATA like no MX", function()
      local p = ok_plan { domain = D, mx = "NODATA",
                          addrs = { [D] = { "192.0.2.7" } } }
      assert.is_true(p.implicit)
      assert.same({ "example.com" }, names_of(p))
    end)

    it("uses the end of the CNAME chain as the implicit host", function()
      local p = ok_plan {
        domain = D, mx = false, cname = "Canonical.Example.",
        addrs = { ["canonical.example"] = { "192.0.2.8" } },
      }
      assert.equal("example.com", p.domain)
      assert.is_true(p.implicit)
      assert.same({ { name = "canonical.example", pref = 0,
                      addrs = { "192.0.2.8" } } }, doc(p).hosts)
    end)

    it("does not look at the alias's own addresses behind a CNAME", function()
      fails("NOHOSTS", { domain = D, mx = false, cname = "canonical.example",
                         addrs = { [D] = { "192.0.2.1" } } })
    end)

    it("is permanent NOHOSTS when the domain has no address either", function()
      fails("NOHOSTS", { domain = D, mx = false })
      fails("NOHOSTS", { domain = D, mx = false, addrs = { [D] = {} } })
      fails("NOHOSTS", { domain = D, mx = false, addrs = { [D] = "NXDOMAIN" } })
    end)

    it("is temporary when the implicit host's address lookup fails", function()
      fails("SERVFAIL", { domain = D, mx = false,
                          addrs = { [D] = "SERVFAIL" } })
    end)
  end)

  describe("rule 4: null MX", function()
    it("is permanent NULLMX for a single MX of '.'", function()
      fails("NULLMX", { domain = D, mx = mxlist(0, ".") })
      assert.equal("permanent", mxroute.class("NULLMX"))
    end)

    it("is NULLMX even when the domain has addresses", function()
      fails("NULLMX", { domain = D, mx = mxlist(0, "."),
                        addrs = { [D] = { "192.0.2.1" } } })
    end)

    it("skips a '.' beside real MX records and uses the others", function()
      local p = ok_plan {
        domain = D, mx = mxlist(0, ".", 10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" } },
      }
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1" } } }, doc(p).hosts)
      assert.same({ { name = ".", pref = 0, code = "NULLMX" } }, skipped_of(p))
    end)

    it("is NOHOSTS, not NULLMX, when '.' sits beside hosts that fail",
       function()
      fails("NOHOSTS", { domain = D, mx = mxlist(0, ".", 10, "gone.example.com"),
                         addrs = { ["gone.example.com"] = "NXDOMAIN" } })
    end)
  end)

  describe("rule 5: each host once", function()
    it("keeps a host listed twice once, at its lowest preference", function()
      local p = ok_plan {
        domain = D,
        mx = mxlist(30, "mx1.example.com", 20, "mx2.example.com",
                    10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" },
                  ["mx2.example.com"] = { "192.0.2.2" } },
      }
      assert.same({
        { name = "mx1.example.com", pref = 10, addrs = { "192.0.2.1" } },
        { name = "mx2.example.com", pref = 20, addrs = { "192.0.2.2" } },
      }, doc(p).hosts)
      assert.same({}, skipped_of(p))
    end)

    it("matches MX names case-insensitively and without a trailing dot",
       function()
      local p = ok_plan {
        domain = D,
        mx = mxlist(20, "MX1.Example.COM.", 10, "mx1.example.com",
                    30, "mx1.EXAMPLE.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" } },
      }
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1" } } }, doc(p).hosts)
    end)

    it("normalises MX names in the plan", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "MX1.Example.COM."),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" } },
      }
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal("mx1.example.com", p.targets[1].host)
    end)

    it("finds addresses under a differently written addrs key", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "MX2.example.com."),
        addrs = { ["MX1.EXAMPLE.COM."] = { "192.0.2.1" },
                  ["Mx2.Example.Com"] = { "192.0.2.2" } },
      }
      assert.same({
        { name = "mx1.example.com", pref = 10, addrs = { "192.0.2.1" } },
        { name = "mx2.example.com", pref = 20, addrs = { "192.0.2.2" } },
      }, doc(p).hosts)
    end)

    it("matches the domain's own addrs key loosely for the implicit MX",
       function()
      local p = ok_plan { domain = D, mx = false,
                          addrs = { ["EXAMPLE.com."] = { "192.0.2.3" } } }
      assert.same({ { name = "example.com", pref = 0,
                      addrs = { "192.0.2.3" } } }, doc(p).hosts)
    end)
  end)

  describe("broken exchange names (rule 14)", function()
    it("skips an MX exchange that is not a host name as FORMERR", function()
      local p = ok_plan {
        domain = D, mx = mxlist(5, "bad..name.example", 10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" } },
      }
      assert.same({ "mx1.example.com" }, names_of(p))
      local s = skipped_of(p)
      assert.equal(1, #s)
      assert.same({ 5, "FORMERR" }, { s[1].pref, s[1].code })
      assert.is_nil(s[1].name:find("%c"))
    end)

    it("is temporary when the only exchange is not a host name", function()
      local p, _, code = mxroute.plan { domain = D,
                                        mx = mxlist(10, "bad\1name") }
      assert.is_nil(p)
      assert.equal("FORMERR", code)
      assert.equal("temporary", mxroute.class(code))
    end)

    it("raises naming the field for a NUL in an exchange given to it", function()
      -- a NUL would cut the name short in C: an argument error, not data
      local ok, e = pcall(mxroute.plan, { domain = D, mx = mxlist(10, "bad\0name") })
      assert.is_false(ok)
      assert.truthy(tostring(e):find("mxroute.plan: mx[1].name 'bad\\x00name' contains a NUL byte",
                                     1, true), e)
    end)
  end)

  describe("rule 6: order", function()
    it("sorts hosts by ascending preference", function()
      -- names in the opposite of alphabetical order, so that no sort by
      -- name can pass for a sort by preference
      local p = ok_plan {
        domain = D,
        mx = mxlist(65535, "a.example.com", 30, "b.example.com",
                    0, "z.example.com", 20, "m.example.com"),
        addrs = { ["z.example.com"] = { "192.0.2.1" },
                  ["m.example.com"] = { "192.0.2.2" },
                  ["b.example.com"] = { "192.0.2.3" },
                  ["a.example.com"] = { "192.0.2.4" } },
      }
      assert.same({ "z.example.com", "m.example.com", "b.example.com",
                    "a.example.com" }, names_of(p))
      assert.same({ 0, 20, 30, 65535 },
                  { p.hosts[1].pref, p.hosts[2].pref, p.hosts[3].pref,
                    p.hosts[4].pref })
      assert.same({ "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4" },
                  { p.targets[1].addr, p.targets[2].addr, p.targets[3].addr,
                    p.targets[4].addr })
    end)

    it("keeps every host of an equal preference, before the next level",
       function()
      for seed = 1, 20 do
        local p = ok_plan({
          domain = D,
          mx = mxlist(20, "a.example.com", 10, "y.example.com",
                      10, "z.example.com", 20, "b.example.com"),
          addrs = { ["y.example.com"] = { "192.0.2.1" },
                    ["z.example.com"] = { "192.0.2.2" },
                    ["a.example.com"] = { "192.0.2.3" },
                    ["b.example.com"] = { "192.0.2.4" } },
        }, { seed = seed })
        local n = names_of(p)
        assert.same({ "y.example.com", "z.example.com" },
                    sorted { n[1], n[2] })
        assert.same({ "a.example.com", "b.example.com" },
                    sorted { n[3], n[4] })
        assert.same({ 10, 10, 20, 20 },
                    { p.hosts[1].pref, p.hosts[2].pref, p.hosts[3].pref,
                      p.hosts[4].pref })
      end
    end)
  end)

  describe("rule 7: address family and preference", function()
    local facts = {
      domain = D, mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com"),
      addrs = {
        ["mx1.example.com"] = { "192.0.2.1", "2001:db8::1", "192.0.2.11",
                                "2001:db8::11" },
        ["mx2.example.com"] = { "2001:db8::2" },
      },
    }

    it("keeps every address of each host with family any", function()
      local p = ok_plan(facts, { family = "any" })
      assert.same({
        input = D, domain = D, implicit = false,
        hosts = {
          { name = "mx1.example.com", pref = 10,
            addrs = { "192.0.2.1", "192.0.2.11", "2001:db8::1",
                      "2001:db8::11" } },
          { name = "mx2.example.com", pref = 20, addrs = { "2001:db8::2" } },
        },
        skipped = {},
      }, doc_sorted(p))
      assert.equal(5, #p.targets)
    end)

    it("keeps only IPv4 addresses with family ipv4", function()
      local p = ok_plan(facts, { family = "ipv4" })
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1", "192.0.2.11" } } },
                  doc_sorted(p).hosts)
      for _, t in ipairs(p.targets) do assert.equal("ipv4", t.family) end
      assert.same({ { name = "mx2.example.com", pref = 20, code = "NODATA" } },
                  skipped_of(p))
    end)

    it("keeps only IPv6 addresses with family ipv6", function()
      local p = ok_plan(facts, { family = "ipv6" })
      assert.same({
        { name = "mx1.example.com", pref = 10,
          addrs = { "2001:db8::1", "2001:db8::11" } },
        { name = "mx2.example.com", pref = 20, addrs = { "2001:db8::2" } },
      }, doc_sorted(p).hosts)
      for _, t in ipairs(p.targets) do assert.equal("ipv6", t.family) end
    end)

    it("fails NOHOSTS when no host has an address of the family", function()
      fails("NOHOSTS", { domain = D, mx = mxlist(10, "mx1.example.com"),
                         addrs = { ["mx1.example.com"] = { "2001:db8::1" } } },
            { family = "ipv4" })
    end)

    it("puts every IPv6 address before any IPv4 with prefer ipv6", function()
      for seed = 1, 20 do
        local p = ok_plan(facts, { prefer = "ipv6", seed = seed })
        local a = p.hosts[1].addrs
        assert.equal(4, #a)
        assert.same({ "ipv6", "ipv6", "ipv4", "ipv4" },
                    { family_of(a[1]), family_of(a[2]), family_of(a[3]),
                      family_of(a[4]) })
        assert.same({ "2001:db8::1", "2001:db8::11" },
                    sorted { a[1], a[2] })
        -- preference orders within a host, never across hosts
        assert.same({ "mx1.example.com", "mx2.example.com" }, names_of(p))
      end
    end)

    it("puts every IPv4 address before any IPv6 with prefer ipv4", function()
      for seed = 1, 20 do
        local p = ok_plan(facts, { prefer = "ipv4", seed = seed })
        local a = p.hosts[1].addrs
        assert.same({ "ipv4", "ipv4", "ipv6", "ipv6" },
                    { family_of(a[1]), family_of(a[2]), family_of(a[3]),
                      family_of(a[4]) })
        assert.same({ "192.0.2.1", "192.0.2.11" }, sorted { a[1], a[2] })
      end
    end)

    it("collapses duplicate addresses within a host, whatever their spelling",
       function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1", "2001:DB8::1",
                                          "192.0.2.1", "2001:db8:0:0::1",
                                          "2001:db8::1" } },
      }
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1", "2001:db8::1" } } },
                  doc_sorted(p).hosts)
      assert.equal(2, #p.targets)
    end)

    it("writes IPv6 addresses in canonical form", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "2001:0DB8:0000:0000:0000:0000:0000:0001" } },
      }
      assert.same({ "2001:db8::1" }, p.hosts[1].addrs)
      assert.same({ { host = "mx1.example.com", pref = 10,
                      addr = "2001:db8::1", family = "ipv6" } },
                  doc(p).targets)
    end)
  end)

  describe("rule 8: self-exclusion", function()
    local facts = {
      domain = D,
      mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com",
                  30, "mx3.example.com"),
      addrs = {
        ["mx1.example.com"] = { "192.0.2.1" },
        ["mx2.example.com"] = { "192.0.2.20", "2001:db8::1" },
        ["mx3.example.com"] = { "192.0.2.3" },
      },
    }

    local function only_mx1(self)
      local p = ok_plan(facts, { self = self })
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1" } } }, doc(p).hosts)
      assert.same({ { host = "mx1.example.com", pref = 10, addr = "192.0.2.1",
                      family = "ipv4" } }, doc(p).targets)
      assert.equal(20, p.self_pref)
    end

    it("counts this machine's interface addresses as ours with self_interfaces",
       function()
      -- 127.0.0.1 is the loopback interface's address on every Linux host
      local lo = {
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "lo.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" },
                  ["lo.example.com"] = { "127.0.0.1" } },
      }
      local p = ok_plan(lo, { ignore_targets = {} })
      assert.same({ "mx1.example.com", "lo.example.com" }, names_of(p))
      p = ok_plan(lo, { ignore_targets = {}, self_interfaces = true })
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal(20, p.self_pref)
      assert.is_nil(ok_plan(lo, { ignore_targets = {}, self_interfaces = false }).self_pref)
      assert.has_error(function() mxroute.plan(lo, { self_interfaces = "yes" }) end)
    end)

    it("reports no self_pref and keeps every host when we are not an MX",
       function()
      local p = ok_plan(facts, { self = { "other.example.net", "192.0.2.99" } })
      assert.same({ "mx1.example.com", "mx2.example.com", "mx3.example.com" },
                  names_of(p))
      assert.is_nil(p.self_pref)
    end)

    it("drops hosts at and above our own preference, found by name",
       function()
      only_mx1 { "mx2.example.com" }
    end)

    it("matches our name case-insensitively and without a trailing dot",
       function()
      only_mx1 { "MX2.Example.COM." }
    end)

    it("drops hosts at and above our own preference, found by IPv4 address",
       function()
      only_mx1 { "192.0.2.20" }
    end)

    it("accepts our address in the bracketed literal form", function()
      only_mx1 { "[192.0.2.20]" }
      only_mx1 { "[IPv6:2001:db8::1]" }
    end)

    it("finds us by an IPv6 address written another way", function()
      only_mx1 { "2001:DB8::0:1" }
      only_mx1 { "2001:0db8:0000:0000:0000:0000:0000:0001" }
    end)

    it("finds us by the IPv4-mapped form of our IPv4 address", function()
      only_mx1 { "::ffff:192.0.2.20" }
    end)

    it("finds us by our IPv4 address when DNS gives the mapped form",
       function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" },
                  ["mx2.example.com"] = { "::ffff:192.0.2.20" } },
      }, { self = { "192.0.2.20" } })
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal(20, p.self_pref)
    end)

    it("finds us by the mapped form in an AAAA record whatever the family",
       function()
      -- family = "ipv4" filters the AAAA out, but we are still recognised
      -- by it: self is judged on every address of a host
      local mapped = {
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1", "2001:db8::1" },
                  ["mx2.example.com"] = { "198.51.100.9", "::ffff:192.0.2.20" } },
      }
      for _, family in ipairs { "any", "ipv4", "ipv6" } do
        local p = ok_plan(mapped, { self = { "192.0.2.20" }, family = family })
        assert.same({ "mx1.example.com" }, names_of(p), family)
        assert.equal(20, p.self_pref, family)
      end
      -- and our mapped address in an A record under family = "ipv6"
      local p = ok_plan({
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com"),
        addrs = { ["mx1.example.com"] = { "2001:db8::1" },
                  ["mx2.example.com"] = { "192.0.2.20", "2001:db8::20" } },
      }, { self = { "::ffff:192.0.2.20" }, family = "ipv6" })
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal(20, p.self_pref)
    end)

    it("finds us by any one of a host's addresses", function()
      only_mx1 { "2001:db8::1" }
    end)

    it("drops every host sharing our preference", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(10, "mx1.example.com", 20, "us.example.com",
                    20, "peer.example.com", 30, "mx3.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" },
                  ["us.example.com"] = { "192.0.2.5" },
                  ["peer.example.com"] = { "192.0.2.6" },
                  ["mx3.example.com"] = { "192.0.2.3" } },
      }, { self = { "us.example.com" } })
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal(20, p.self_pref)
    end)

    it("uses our lowest preference when we appear more than once", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(10, "mx1.example.com", 20, "mx2.example.com",
                    30, "us-a.example.com", 15, "us-b.example.com"),
        addrs = { ["mx1.example.com"] = { "192.0.2.1" },
                  ["mx2.example.com"] = { "192.0.2.2" },
                  ["us-a.example.com"] = { "192.0.2.5" },
                  ["us-b.example.com"] = { "192.0.2.6" } },
      }, { self = { "us-a.example.com", "192.0.2.6" } })
      assert.same({ "mx1.example.com" }, names_of(p))
      assert.equal(15, p.self_pref)
    end)

    it("is LOOP when we are the best MX, by name", function()
      fails("LOOP", facts, { self = { "mx1.example.com" } })
      assert.equal("loop", mxroute.class("LOOP"))
    end)

    it("is LOOP when we are the best MX, by address", function()
      fails("LOOP", facts, { self = { "192.0.2.1" } })
    end)

    it("is LOOP when we share the best preference with another host",
       function()
      fails("LOOP", {
        domain = D,
        mx = mxlist(10, "us.example.com", 10, "peer.example.com",
                    20, "backup.example.com"),
        addrs = { ["us.example.com"] = { "192.0.2.5" },
                  ["peer.example.com"] = { "192.0.2.6" },
                  ["backup.example.com"] = { "192.0.2.7" } },
      }, { self = { "192.0.2.5" } })
    end)

    it("is LOOP for the implicit MX when the domain's address is ours",
       function()
      fails("LOOP", { domain = D, mx = false,
                      addrs = { [D] = { "192.0.2.1", "192.0.2.5" } } },
            { self = { "192.0.2.5" } })
    end)

    it("is LOOP for the implicit MX when the domain is our name", function()
      fails("LOOP", { domain = D, mx = false,
                      addrs = { [D] = { "192.0.2.1" } } },
            { self = { "Example.Com." } })
    end)

    it("is LOOP for the implicit MX when the CNAME target is our name",
       function()
      fails("LOOP", { domain = D, mx = false, cname = "canonical.example",
                      addrs = { ["canonical.example"] = { "192.0.2.1" } } },
            { self = { "canonical.example" } })
    end)

    it("reports a better host's temporary failure rather than LOOP",
       function()
      fails("SERVFAIL", {
        domain = D, mx = mxlist(10, "mx1.example.com", 20, "us.example.com"),
        addrs = { ["mx1.example.com"] = "SERVFAIL",
                  ["us.example.com"] = { "192.0.2.5" } },
      }, { self = { "us.example.com" } })
    end)
  end)

  describe("rule 9: hosts whose address lookup fails", function()
    it("skips and reports them with name, preference and code", function()
      local p = ok_plan {
        domain = D,
        mx = mxlist(10, "gone.example.com", 20, "nodata.example.com",
                    30, "broken.example.com", 40, "mx4.example.com",
                    50, "empty.example.com", 60, "slow.example.com"),
        addrs = { ["gone.example.com"] = "NXDOMAIN",
                  ["broken.example.com"] = "SERVFAIL",
                  ["mx4.example.com"] = { "192.0.2.4" },
                  ["empty.example.com"] = {},
                  ["slow.example.com"] = "TIMEOUT" },
      }
      assert.same({
        input = D, domain = D, implicit = false,
        hosts = { { name = "mx4.example.com", pref = 40,
                    addrs = { "192.0.2.4" } } },
        targets = { { host = "mx4.example.com", pref = 40, addr = "192.0.2.4",
                      family = "ipv4" } },
        skipped = {
          { name = "gone.example.com", pref = 10, code = "NXDOMAIN" },
          { name = "nodata.example.com", pref = 20, code = "NODATA" },
          { name = "broken.example.com", pref = 30, code = "SERVFAIL" },
          { name = "empty.example.com", pref = 50, code = "NODATA" },
          { name = "slow.example.com", pref = 60, code = "TIMEOUT" },
        },
      }, (function()
        local d = doc(p)
        d.skipped = skipped_of(p)
        return d
      end)())
    end)

    it("is temporary when any skipped host failed temporarily", function()
      fails("SERVFAIL", {
        domain = D, mx = mxlist(10, "gone.example.com", 20, "broken.example.com",
                                30, "nodata.example.com"),
        addrs = { ["gone.example.com"] = "NXDOMAIN",
                  ["broken.example.com"] = "SERVFAIL" },
      })
    end)

    it("lets the temporary failure win whatever the preference order",
       function()
      fails("TIMEOUT", {
        domain = D, mx = mxlist(10, "slow.example.com", 20, "gone.example.com"),
        addrs = { ["slow.example.com"] = "TIMEOUT",
                  ["gone.example.com"] = "NXDOMAIN" },
      })
    end)

    it("gives a temporary class when several temporary failures mix",
       function()
      local p, _, code = mxroute.plan {
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = "REFUSED",
                  ["b.example.com"] = "TIMEOUT" },
      }
      assert.is_nil(p)
      assert.equal("temporary", mxroute.class(code))
    end)

    it("is NOHOSTS when every skipped host failed permanently", function()
      local msg = fails("NOHOSTS", {
        domain = D, mx = mxlist(10, "gone.example.com", 20, "nodata.example.com"),
        addrs = { ["gone.example.com"] = "NXDOMAIN" },
      })
      assert.truthy(msg:find("example.com", 1, true))
      assert.equal("permanent", mxroute.class("NOHOSTS"))
    end)

    it("attaches the skipped hosts to a failure when it gives a 4th value",
       function()
      local p, _, code, extra = mxroute.plan {
        domain = D, mx = mxlist(10, "gone.example.com"),
        addrs = { ["gone.example.com"] = "NXDOMAIN" },
      }
      assert.is_nil(p)
      assert.equal("NOHOSTS", code)
      if extra ~= nil then
        local s = {}
        for i, e in ipairs(extra.skipped) do
          s[i] = { name = e.name, pref = e.pref, code = e.code }
        end
        assert.same({ { name = "gone.example.com", pref = 10,
                        code = "NXDOMAIN" } }, s)
      end
    end)
  end)

  describe("rule 10: an MX exchange that is an IP address", function()
    it("is a name like any other by default", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "192.0.2.55", 20, "mx2.example.com"),
        addrs = { ["mx2.example.com"] = { "192.0.2.2" } },
      }
      assert.same({ { name = "mx2.example.com", pref = 20,
                      addrs = { "192.0.2.2" } } }, doc(p).hosts)
      assert.same({ { name = "192.0.2.55", pref = 10, code = "NODATA" } },
                  skipped_of(p))
    end)

    it("is NOHOSTS when it is the only exchange and has no address",
       function()
      fails("NOHOSTS", { domain = D, mx = mxlist(10, "192.0.2.55") })
    end)

    it("is looked up as a name by default", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "192.0.2.55"),
        addrs = { ["192.0.2.55"] = { "192.0.2.99" } },
      }
      assert.same({ { name = "192.0.2.55", pref = 10,
                      addrs = { "192.0.2.99" } } }, doc(p).hosts)
    end)

    it("is used as the address with allow_mx_to_ip", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "192.0.2.55", 20, "2001:db8::55"),
      }, { allow_mx_to_ip = true })
      assert.same({
        { name = "192.0.2.55", pref = 10, addrs = { "192.0.2.55" } },
        { name = "2001:db8::55", pref = 20, addrs = { "2001:db8::55" } },
      }, doc(p).hosts)
      assert.same({ "ipv4", "ipv6" }, { p.targets[1].family,
                                        p.targets[2].family })
    end)

    it("is still subject to the target guard with allow_mx_to_ip", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "10.0.0.1", 20, "192.0.2.55"),
      }, { allow_mx_to_ip = true })
      assert.same({ "192.0.2.55" }, names_of(p))
      assert.same({ { name = "10.0.0.1", pref = 10, code = "IGNORED" } },
                  skipped_of(p))
    end)

    it("still counts as us with allow_mx_to_ip", function()
      fails("LOOP", { domain = D, mx = mxlist(10, "192.0.2.55") },
            { allow_mx_to_ip = true, self = { "192.0.2.55" } })
    end)
  end)

  describe("rule 11: the target guard", function()
    local ignored = {
      "0.0.0.0", "127.0.0.1", "127.255.255.254", "10.0.0.1",
      "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1",
      "169.254.1.1", "224.0.0.1", "239.255.255.255", "255.255.255.255",
      "::", "::1", "fe80::1", "febf::1", "ff02::1", "fc00::1",
      "fd12:3456::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
      "::ffff:192.168.0.1",
    }
    for _, a in ipairs(ignored) do
      it("drops " .. a .. " and reports the host as IGNORED", function()
        local p = ok_plan {
          domain = D, mx = mxlist(10, "bad.example.com", 20, "good.example.com"),
          addrs = { ["bad.example.com"] = { a },
                    ["good.example.com"] = { "192.0.2.2" } },
        }
        assert.same({ { name = "good.example.com", pref = 20,
                        addrs = { "192.0.2.2" } } }, doc(p).hosts)
        assert.same({ { name = "bad.example.com", pref = 10, code = "IGNORED" } },
                    skipped_of(p))
        assert.equal("permanent", mxroute.class("IGNORED"))
      end)
    end

    local allowed = {
      "172.15.255.254", "172.32.0.1", "192.169.0.1", "11.0.0.1",
      "169.255.0.1", "223.255.255.254", "128.0.0.1", "192.0.2.1",
      "198.51.100.1", "2001:db8::1", "fe7f::1", "2606:4700::1111",
      "::ffff:192.0.2.1",
    }
    for _, a in ipairs(allowed) do
      it("keeps " .. a .. " by default", function()
        local p = ok_plan {
          domain = D, mx = mxlist(10, "mx1.example.com"),
          addrs = { ["mx1.example.com"] = { a } },
        }
        assert.equal(1, #p.hosts)
        assert.equal(1, #p.hosts[1].addrs)
        assert.same({}, skipped_of(p))
      end)
    end

    it("drops only the guarded addresses of a host that has others",
       function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "mx1.example.com"),
        addrs = { ["mx1.example.com"] = { "10.0.0.1", "192.0.2.1", "::1" } },
      }
      assert.same({ { name = "mx1.example.com", pref = 10,
                      addrs = { "192.0.2.1" } } }, doc(p).hosts)
    end)

    it("is NOHOSTS when every address of the domain is ignored", function()
      fails("NOHOSTS", {
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "127.0.0.1" },
                  ["b.example.com"] = { "10.1.2.3", "fd00::1" } },
      })
    end)

    it("is NOHOSTS when the implicit MX has only ignored addresses",
       function()
      fails("NOHOSTS", { domain = D, mx = false,
                         addrs = { [D] = { "127.0.0.1", "::1" } } })
    end)

    it("allows every address with ignore_targets = {}", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "a.example.com"),
        addrs = { ["a.example.com"] = { "127.0.0.1", "10.0.0.1", "::1" } },
      }, { ignore_targets = {} })
      assert.same({ { name = "a.example.com", pref = 10,
                      addrs = { "10.0.0.1", "127.0.0.1", "::1" } } },
                  doc_sorted(p).hosts)
      assert.same({}, skipped_of(p))
    end)

    it("replaces the default list with a custom one", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(10, "a.example.com", 20, "b.example.com",
                    30, "c.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1" },
                  ["b.example.com"] = { "10.0.0.1" },
                  ["c.example.com"] = { "2001:db8:1::1", "2001:db8:2::1" } },
      }, { ignore_targets = { "192.0.2.0/24", "2001:db8:1::/48" } })
      assert.same({
        { name = "b.example.com", pref = 20, addrs = { "10.0.0.1" } },
        { name = "c.example.com", pref = 30, addrs = { "2001:db8:2::1" } },
      }, doc(p).hosts)
      assert.same({ { name = "a.example.com", pref = 10, code = "IGNORED" } },
                  skipped_of(p))
    end)

    it("accepts a bare address in ignore_targets", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "a.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "192.0.2.2" } },
      }, { ignore_targets = { "192.0.2.1" } })
      assert.same({ "192.0.2.2" }, p.hosts[1].addrs)
    end)

    it("judges an IPv4-mapped address by a custom IPv4 range", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "::ffff:192.0.2.1" },
                  ["b.example.com"] = { "192.0.2.200" } },
      }, { ignore_targets = { "192.0.2.0/25" } })
      assert.same({ "b.example.com" }, names_of(p))
      assert.same({ { name = "a.example.com", pref = 10, code = "IGNORED" } },
                  skipped_of(p))
    end)
  end)

  describe("rule 12: bounded work", function()
    it("skips hosts beyond max_hosts as TOOMANY", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(30, "c.example.com", 10, "a.example.com",
                    20, "b.example.com", 40, "d.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1" },
                  ["b.example.com"] = { "192.0.2.2" },
                  ["c.example.com"] = { "192.0.2.3" },
                  ["d.example.com"] = { "192.0.2.4" } },
      }, { max_hosts = 2 })
      assert.same({ "a.example.com", "b.example.com" }, names_of(p))
      assert.same({ { name = "c.example.com", pref = 30, code = "TOOMANY" },
                    { name = "d.example.com", pref = 40, code = "TOOMANY" } },
                  skipped_of(p))
      assert.equal("permanent", mxroute.class("TOOMANY"))
    end)

    it("counts a host listed twice once against max_hosts", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(10, "a.example.com", 20, "a.example.com",
                    30, "b.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1" },
                  ["b.example.com"] = { "192.0.2.2" } },
      }, { max_hosts = 2 })
      assert.same({ "a.example.com", "b.example.com" }, names_of(p))
      assert.same({}, skipped_of(p))
    end)

    it("limits the hosts to a few dozen by default", function()
      local mx, addrs = {}, {}
      for i = 1, 40 do
        local name = ("h%02d.example.com"):format(i)
        mx[i] = { pref = i, name = name }
        addrs[name] = { ("192.0.2.%d"):format(i) }
      end
      local p = ok_plan { domain = D, mx = mx, addrs = addrs }
      assert.is_true(#p.hosts >= 10 and #p.hosts < 40)
      assert.equal("h01.example.com", p.hosts[1].name)
      local s = skipped_of(p)
      assert.equal(40 - #p.hosts, #s)
      for _, e in ipairs(s) do
        assert.equal("TOOMANY", e.code)
        assert.is_true(e.pref > #p.hosts)
      end
    end)

    it("keeps at most max_addrs addresses per host", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "192.0.2.2", "192.0.2.3",
                                        "2001:db8::1" },
                  ["b.example.com"] = { "192.0.2.9" } },
      }, { max_addrs = 2 })
      assert.equal(2, #p.hosts[1].addrs)
      assert.same({ "192.0.2.9" }, p.hosts[2].addrs)
      local all = { ["192.0.2.1"] = true, ["192.0.2.2"] = true,
                    ["192.0.2.3"] = true, ["2001:db8::1"] = true }
      for _, a in ipairs(p.hosts[1].addrs) do assert.is_true(all[a]) end
      assert.equal(3, #p.targets)
    end)

    it("applies max_addrs after collapsing duplicates", function()
      local p = ok_plan({
        domain = D, mx = mxlist(10, "a.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "192.0.2.1", "192.0.2.1",
                                        "192.0.2.2" } },
      }, { max_addrs = 2 })
      assert.same({ "192.0.2.1", "192.0.2.2" }, sorted(p.hosts[1].addrs))
    end)

    it("limits the addresses per host by default", function()
      local list = {}
      for i = 1, 100 do list[i] = ("192.0.2.%d"):format(i) end
      local p = ok_plan { domain = D, mx = mxlist(10, "a.example.com"),
                          addrs = { ["a.example.com"] = list } }
      assert.is_true(#p.hosts[1].addrs >= 4 and #p.hosts[1].addrs < 100)
    end)
  end)

  describe("rule 13: the flat list of targets", function()
    it("lists an address shared by two hosts once, at its first host",
       function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1" },
                  ["b.example.com"] = { "192.0.2.1", "2001:db8::2" } },
      }
      assert.same({
        { name = "a.example.com", pref = 10, addrs = { "192.0.2.1" } },
        { name = "b.example.com", pref = 20,
          addrs = { "192.0.2.1", "2001:db8::2" } },
      }, doc_sorted(p).hosts)
      assert.same({
        { host = "a.example.com", pref = 10, addr = "192.0.2.1",
          family = "ipv4" },
        { host = "b.example.com", pref = 20, addr = "2001:db8::2",
          family = "ipv6" },
      }, doc(p).targets)
    end)

    it("recognises a shared IPv6 address written two ways", function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "2001:db8::1" },
                  ["b.example.com"] = { "2001:DB8:0:0:0:0:0:1" } },
      }
      assert.same({ "2001:db8::1" }, p.hosts[2].addrs)
      assert.same({ { host = "a.example.com", pref = 10, addr = "2001:db8::1",
                      family = "ipv6" } }, doc(p).targets)
    end)

    it("keeps a host whose every address came earlier in the host list",
       function()
      local p = ok_plan {
        domain = D, mx = mxlist(10, "a.example.com", 20, "b.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1" },
                  ["b.example.com"] = { "192.0.2.1" } },
      }
      assert.same({ "a.example.com", "b.example.com" }, names_of(p))
      assert.same({ "192.0.2.1" }, p.hosts[2].addrs)
      assert.equal(1, #p.targets)
    end)

    it("follows host order, then each host's address order", function()
      local p = ok_plan({
        domain = D,
        mx = mxlist(10, "a.example.com", 20, "b.example.com",
                    30, "c.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "192.0.2.2", "2001:db8::1" },
                  ["b.example.com"] = { "192.0.2.3", "192.0.2.1" },
                  ["c.example.com"] = { "2001:db8::1", "2001:db8::3" } },
      }, { prefer = "ipv6" })
      -- a: 3 addresses, b: 1 new of 2, c: 1 new of 2 (ok_plan checked the
      -- exact list against the hosts)
      assert.equal(5, #p.targets)
      assert.equal("2001:db8::1", p.targets[1].addr)
      assert.same({ "a.example.com", "a.example.com", "a.example.com",
                    "b.example.com", "c.example.com" },
                  { p.targets[1].host, p.targets[2].host, p.targets[3].host,
                    p.targets[4].host, p.targets[5].host })
    end)
  end)

  describe("options", function()
    local facts = { domain = D, mx = mxlist(10, "mx1.example.com"),
                    addrs = { ["mx1.example.com"] = { "192.0.2.1" } } }

    it("accepts no options, an empty table and every valid field", function()
      assert.truthy(mxroute.plan(facts))
      assert.truthy(mxroute.plan(facts, {}))
      assert.truthy(mxroute.plan(facts, {
        self = { "me.example.net", "192.0.2.200", "2001:db8::200" },
        family = "any", prefer = "ipv6", seed = 7, allow_mx_to_ip = false,
        ignore_targets = { "10.0.0.0/8", "fc00::/7" }, max_hosts = 5,
        max_addrs = 3,
      }))
    end)

    local bad = {
      { "family", { family = "ipv5" } },
      { "family", { family = 4 } },
      { "prefer", { prefer = "ipv5" } },
      { "prefer", { prefer = true } },
      { "seed", { seed = "abc" } },
      { "seed", { seed = {} } },
      { "allow_mx_to_ip", { allow_mx_to_ip = "yes" } },
      { "ignore_targets", { ignore_targets = true } },
      { "ignore_targets", { ignore_targets = { "not a cidr" } } },
      { "ignore_targets", { ignore_targets = { "10.0.0.0/33" } } },
      { "ignore_targets", { ignore_targets = { "2001:db8::/129" } } },
      { "ignore_targets", { ignore_targets = { 42, {} } } },
      { "max_hosts", { max_hosts = 0 } },
      { "max_hosts", { max_hosts = -1 } },
      { "max_hosts", { max_hosts = 1.5 } },
      { "max_hosts", { max_hosts = {} } },
      { "max_addrs", { max_addrs = 0 } },
      { "max_addrs", { max_addrs = -3 } },
      { "max_addrs", { max_addrs = "many" } },
      { "self", { self = { "bad name.example" } } },
      { "self", { self = { "a..b.example" } } },
      { "self", { self = { {} } } },
      { "self", { self = 42 } },
      { "frobnicate", { frobnicate = true } },
    }
    for _, case in ipairs(bad) do
      local field, opts = case[1], case[2]
      local shown = {}
      for k, v in pairs(opts) do
        shown[#shown + 1] = k .. "=" .. (type(v) == "table" and "{...}"
                                         or tostring(v))
      end
      it("raises an error naming " .. field .. " for " .. shown[1], function()
        raises_naming(field, function() mxroute.plan(facts, opts) end)
      end)
    end

    it("raises when the options are not a table", function()
      assert.has_error(function() mxroute.plan(facts, "ipv4") end)
      assert.has_error(function() mxroute.plan(facts, 5) end)
    end)
  end)

  describe("facts given to the planner", function()
    it("raises when the facts are not a table", function()
      assert.has_error(function() mxroute.plan("example.com") end)
      assert.has_error(function() mxroute.plan() end)
    end)

    it("raises naming domain when the domain is missing", function()
      raises_naming("domain", function() mxroute.plan { mx = false } end)
      raises_naming("domain", function() mxroute.plan { domain = {} } end)
    end)

    it("raises naming mx for an unknown code or a wrong type", function()
      raises_naming("mx", function()
        mxroute.plan { domain = D, mx = "NOSUCHCODE" }
      end)
      raises_naming("mx", function() mxroute.plan { domain = D, mx = 10 } end)
      raises_naming("mx", function() mxroute.plan { domain = D, mx = true } end)
    end)

    it("raises for an MX record without a valid preference or name",
       function()
      assert.has_error(function()
        mxroute.plan { domain = D, mx = { { pref = "x", name = "a.test" } } }
      end)
      assert.has_error(function()
        mxroute.plan { domain = D, mx = { { pref = 70000, name = "a.test" } } }
      end)
      assert.has_error(function()
        mxroute.plan { domain = D, mx = { { pref = -1, name = "a.test" } } }
      end)
      assert.has_error(function()
        mxroute.plan { domain = D, mx = { { pref = 10 } } }
      end)
      assert.has_error(function()
        mxroute.plan { domain = D, mx = { "a.test" } }
      end)
    end)

    it("raises naming addrs for an unknown code or a wrong type", function()
      raises_naming("addrs", function()
        mxroute.plan { domain = D, mx = false, addrs = { [D] = "NOSUCHCODE" } }
      end)
      raises_naming("addrs", function()
        mxroute.plan { domain = D, mx = false, addrs = { [D] = 5 } }
      end)
      raises_naming("addrs", function()
        mxroute.plan { domain = D, mx = false, addrs = "192.0.2.1" }
      end)
    end)

    it("fails FORMERR, naming it, for an address that is not one", function()
      -- DESIGN 3: a bad address from data is a runtime failure, not misuse
      local msg = fails("FORMERR", { domain = D, mx = false,
                                     addrs = { [D] = { "192.0.2.300" } } })
      assert.truthy(msg:find("192.0.2.300", 1, true))
    end)

    it("raises naming cname for a wrong type", function()
      raises_naming("cname", function()
        mxroute.plan { domain = D, mx = false, cname = 5 }
      end)
    end)

    it("does not change the tables it is given", function()
      local facts = {
        domain = "User@Example.COM",
        mx = mxlist(20, "B.example.com.", 10, "a.example.com", 10, "a.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "2001:DB8::1" },
                  ["B.example.com."] = { "192.0.2.2" } },
      }
      local opts = { self = { "b.example.com" }, ignore_targets = {} }
      local before_facts = {
        domain = "User@Example.COM",
        mx = mxlist(20, "B.example.com.", 10, "a.example.com", 10, "a.example.com"),
        addrs = { ["a.example.com"] = { "192.0.2.1", "2001:DB8::1" },
                  ["B.example.com."] = { "192.0.2.2" } },
      }
      ok_plan(facts, opts)
      assert.same(before_facts, facts)
      assert.same({ self = { "b.example.com" }, ignore_targets = {} }, opts)
    end)
  end)
end)
