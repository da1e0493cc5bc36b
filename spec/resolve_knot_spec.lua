-- End-to-end resolution against the real authoritative server (Knot) of
-- spec/support/knot.lua, serving spec/zones/: every DNS rule of DESIGN
-- section 1, with the exact outcome spec/zones/README.md gives for each
-- test domain.
local knot = require "support.knot"
local plans = require "support.plans"
local util = require "support.util"
local mxroute = require "mxroute"

local srv

local function resolver(opts)
  return plans.resolver({ nameservers = { srv.addr }, timeout = 1, tries = 2 }, opts)
end

-- One resolution on a fresh resolver (closed afterwards).
local function resolve(input, opts)
  local r = resolver(opts)
  local p, msg, code, info = r:resolve(input)
  r:close()
  return p, msg, code, info
end

local sorted, hosts_of, names_of = plans.sorted, plans.hosts_of, plans.names_of
local skipped_of, expected_targets, targets_of = plans.skipped_of, plans.expected_targets, plans.targets_of

local function addrs_of_targets(p)
  local out = {}
  for i, t in ipairs(p.targets) do out[i] = t.addr end
  return out
end

-- A successful plan, its targets checked against its hosts.
local function ok(input, opts)
  local p, msg, code = resolve(input, opts)
  assert(p, ("%s: expected a plan, got %s: %s"):format(input, tostring(code), tostring(msg)))
  assert.equal(input, p.input)
  assert.same(expected_targets(p), targets_of(p))
  return p
end

-- A failure with `want` as code; returns message and info.
local function fails(want, class, input, opts)
  local p, msg, code, info = resolve(input, opts)
  assert.is_nil(p, input .. ": expected failure " .. want)
  assert.equal(want, code)
  assert.equal(class, mxroute.class(code))
  assert.equal("string", type(msg))
  assert.is_true(#msg > 0)
  return msg, info
end

describe("resolution against Knot", function()
  setup(function() srv = knot.shared() end)

  describe("MX order (rules 1, 5, 6)", function()
    it("gives the whole plan of one MX host", function()
      local p = ok("user@simple.mx.test")
      assert.equal("simple.mx.test", p.domain)
      assert.is_false(p.implicit)
      assert.is_nil(p.self_pref)
      assert.same({}, skipped_of(p))
      assert.same({ { name = "mx.simple.mx.test", pref = 10,
                      addrs = { "192.0.2.10", "2001:db8::10" } } }, hosts_of(p))
      assert.equal(2, #p.targets)
    end)

    it("sorts the primary before the backup whatever the record order", function()
      local p = ok("backup.mx.test")
      assert.same({
        { name = "mx1.backup.mx.test", pref = 10, addrs = { "192.0.2.11", "2001:db8::11" } },
        { name = "mx2.backup.mx.test", pref = 20, addrs = { "192.0.2.12" } },
      }, hosts_of(p))
      assert.equal("192.0.2.12", p.targets[3].addr)
      assert.equal(20, p.targets[3].pref)
    end)

    it("keeps each host once, at its lowest preference, whatever its case", function()
      local p = ok("dup.mx.test")
      assert.same({
        { name = "mx.dup.mx.test", pref = 10, addrs = { "192.0.2.42" } },
        { name = "other.dup.mx.test", pref = 15, addrs = { "192.0.2.43" } },
      }, hosts_of(p))
    end)

    it("matches the mixed-case zone names case-insensitively", function()
      local want = {
        { name = "mx1.mixedcase.mx.test", pref = 10, addrs = { "192.0.2.51" } },
        { name = "mx2.mixedcase.mx.test", pref = 20, addrs = { "192.0.2.52" } },
      }
      for _, input in ipairs { "mixedcase.mx.test", "MixedCase.MX.Test",
                               "user@MIXEDCASE.mx.TEST", "MixedCase.MX.Test." } do
        local p = ok(input)
        assert.equal("mixedcase.mx.test", p.domain)
        assert.same(want, hosts_of(p))
      end
    end)
  end)

  describe("equal preferences (rule 6)", function()
    local POOL = { "a.pool.mx.test", "b.pool.mx.test", "c.pool.mx.test" }

    local function order(seed)
      local p = ok("pool.mx.test", { seed = seed })
      for _, h in ipairs(p.hosts) do
        assert.equal(10, h.pref)
        assert.equal(1, #h.addrs)
      end
      return table.concat(names_of(p), " ")
    end

    it("keeps all three hosts of the pool at preference 10", function()
      local p = ok("pool.mx.test")
      assert.same(POOL, sorted(names_of(p)))
      assert.same({ "192.0.2.21", "192.0.2.22", "192.0.2.23" }, sorted(addrs_of_targets(p)))
    end)

    it("gives the same order to fresh resolvers with the same seed", function()
      for seed = 1, 8 do
        local first = order(seed)
        assert.equal(first, order(seed))
        assert.equal(first, order(seed))
      end
    end)

    it("puts the pool in every order over seeds", function()
      local seen, n = {}, 0
      for seed = 1, 60 do
        local o = order(seed)
        if not seen[o] then seen[o], n = true, n + 1 end
      end
      assert.equal(6, n)
    end)
  end)

  describe("address families (rule 7)", function()
    local V4 = { "192.0.2.31", "192.0.2.32" }
    local V6 = { "2001:db8::31", "2001:db8::32" }

    local function addrs(opts)
      local p = ok("multi.mx.test", opts)
      assert.equal(1, #p.hosts)
      assert.equal("mh.multi.mx.test", p.hosts[1].name)
      return p.hosts[1].addrs, p
    end

    it("keeps all four addresses of the multihomed host", function()
      local a, p = addrs()
      assert.same({ "192.0.2.31", "192.0.2.32", "2001:db8::31", "2001:db8::32" }, sorted(a))
      assert.equal(4, #p.targets)
    end)

    it("keeps only the A addresses with family ipv4", function()
      local a, p = addrs { family = "ipv4" }
      assert.same(V4, sorted(a))
      for _, t in ipairs(p.targets) do assert.equal("ipv4", t.family) end
    end)

    it("keeps only the AAAA addresses with family ipv6", function()
      local a, p = addrs { family = "ipv6" }
      assert.same(V6, sorted(a))
      for _, t in ipairs(p.targets) do assert.equal("ipv6", t.family) end
    end)

    it("puts IPv6 first with prefer ipv6 and IPv4 first with prefer ipv4", function()
      for seed = 1, 10 do
        local a = addrs { prefer = "ipv6", seed = seed }
        assert.same(V6, sorted { a[1], a[2] })
        assert.same(V4, sorted { a[3], a[4] })
        a = addrs { prefer = "ipv4", seed = seed }
        assert.same(V4, sorted { a[1], a[2] })
        assert.same(V6, sorted { a[3], a[4] })
      end
    end)

    it("shuffles a host's addresses, reproducibly with a seed", function()
      local firsts, n = {}, 0
      for seed = 1, 40 do
        local a = addrs { seed = seed }
        assert.same(a, (addrs { seed = seed }))
        if not firsts[a[1]] then firsts[a[1]], n = true, n + 1 end
      end
      -- without prefer, any of the four (of either family) comes first
      assert.equal(4, n)
    end)

    it("uses the IPv6-only host", function()
      local p = ok("v6only.mx.test")
      assert.same({ { name = "mx.v6only.mx.test", pref = 10, addrs = { "2001:db8::41" } } }, hosts_of(p))
      assert.same({ { host = "mx.v6only.mx.test", pref = 10, addr = "2001:db8::41", family = "ipv6" } },
                  targets_of(p))
    end)

    it("is NOHOSTS for the IPv6-only host with family ipv4", function()
      local _, info = fails("NOHOSTS", "permanent", "v6only.mx.test", { family = "ipv4" })
      assert.same({ { name = "mx.v6only.mx.test", pref = 10, code = "NODATA" } }, skipped_of(info))
    end)
  end)

  describe("targets (rule 13) and bounds (rule 12)", function()
    it("lists an address shared by two hosts once, at its first host", function()
      local p = ok("shared.mx.test")
      assert.same({
        { name = "a.shared.mx.test", pref = 10, addrs = { "192.0.2.61" } },
        { name = "b.shared.mx.test", pref = 20, addrs = { "192.0.2.61", "192.0.2.62" } },
      }, hosts_of(p))
      assert.same({
        { host = "a.shared.mx.test", pref = 10, addr = "192.0.2.61", family = "ipv4" },
        { host = "b.shared.mx.test", pref = 20, addr = "192.0.2.62", family = "ipv4" },
      }, targets_of(p))
    end)

    local function in_manyaddr(list)
      local seen = {}
      for _, a in ipairs(list) do
        local n = tonumber(a:match("^203%.0%.113%.(%d+)$"))
        assert.truthy(n and n >= 1 and n <= 20, a)
        assert.is_nil(seen[a], "listed twice: " .. a)
        seen[a] = true
      end
    end

    it("caps a host's 20 addresses at 16 by default", function()
      local p = ok("manyaddr.mx.test")
      assert.equal(1, #p.hosts)
      assert.equal("fat.manyaddr.mx.test", p.hosts[1].name)
      assert.equal(16, #p.hosts[1].addrs)
      in_manyaddr(p.hosts[1].addrs)
      assert.equal(16, #p.targets)
    end)

    it("caps a host's addresses at max_addrs", function()
      local p = ok("manyaddr.mx.test", { max_addrs = 3 })
      assert.equal(3, #p.hosts[1].addrs)
      in_manyaddr(p.hosts[1].addrs)
    end)

    local function many_host(n)
      return { name = ("mail-exchanger-host-number-%02d.many.mx.test"):format(n),
               pref = n, addrs = { "198.51.100." .. n } }
    end

    it("gets the truncated 30-MX answer over TCP and keeps all 30 hosts in order", function()
      local p = ok("many.mx.test")
      local want = {}
      for n = 1, 30 do want[n] = many_host(n) end
      assert.same(want, hosts_of(p))
      assert.equal(30, #p.targets)
      assert.same({}, skipped_of(p))
    end)

    it("cuts the list at max_hosts, reporting the rest as TOOMANY", function()
      local p = ok("many.mx.test", { max_hosts = 5 })
      local want, skipped = {}, {}
      for n = 1, 5 do want[n] = many_host(n) end
      for n = 6, 30 do
        skipped[#skipped + 1] = { name = many_host(n).name, pref = n, code = "TOOMANY" }
      end
      assert.same(want, hosts_of(p))
      assert.same(skipped, skipped_of(p))
    end)

    it("applies max_hosts after sorting by preference", function()
      local p = ok("backup.mx.test", { max_hosts = 1 })
      assert.same({ "mx1.backup.mx.test" }, names_of(p))
      assert.same({ { name = "mx2.backup.mx.test", pref = 20, code = "TOOMANY" } }, skipped_of(p))
    end)
  end)

  describe("failures of the MX lookup (rules 2, 3)", function()
    it("is permanent NXDOMAIN for a domain that does not exist", function()
      local msg = fails("NXDOMAIN", "permanent", "user@nosuch.mx.test")
      assert.truthy(msg:find("nosuch.mx.test", 1, true))
    end)

    it("is permanent NOHOSTS for an apex with neither MX nor address", function()
      local _, info = fails("NOHOSTS", "permanent", "mx.test")
      assert.same({ { name = "mx.test", pref = 0, code = "NODATA" } }, skipped_of(info))
    end)
  end)

  describe("CNAME (rules 1, 14)", function()
    local TARGET = { { name = "mx.target.cname.test", pref = 10,
                       addrs = { "192.0.2.71", "2001:db8::71" } } }

    it("resolves the CNAME target itself", function()
      assert.same(TARGET, hosts_of(ok("target.cname.test")))
    end)

    for _, d in ipairs { "alias", "chain", "eight" } do
      it("follows the CNAME chain of " .. d .. ".cname.test to the target's MX", function()
        local p = ok("user@" .. d .. ".cname.test")
        assert.equal(d .. ".cname.test", p.domain)
        assert.is_false(p.implicit)
        assert.same(TARGET, hosts_of(p))
      end)
    end

    it("asks again across zones for cross.cname.test", function()
      local p = ok("cross.cname.test")
      assert.same({ { name = "mx.simple.mx.test", pref = 10,
                      addrs = { "192.0.2.10", "2001:db8::10" } } }, hosts_of(p))
    end)

    it("is temporary CNAMELOOP for a chain of nine", function()
      fails("CNAMELOOP", "temporary", "nine.cname.test")
    end)

    it("is temporary CNAMELOOP for a CNAME loop", function()
      fails("CNAMELOOP", "temporary", "loop-a.cname.test")
      fails("CNAMELOOP", "temporary", "user@LOOP-B.cname.test")
    end)

    it("is NXDOMAIN for a dangling CNAME", function()
      fails("NXDOMAIN", "permanent", "dangling.cname.test")
    end)

    it("keeps the MX host's own name when the host is a CNAME", function()
      local p = ok("hostalias.cname.test")
      assert.same({ { name = "mxalias.hostalias.cname.test", pref = 10,
                      addrs = { "192.0.2.72", "2001:db8::72" } } }, hosts_of(p))
    end)
  end)

  describe("implicit MX (rule 3)", function()
    it("uses the domain at preference 0 when it has no MX", function()
      local p = ok("user@addr.nomx.test")
      assert.is_true(p.implicit)
      assert.same({ { name = "addr.nomx.test", pref = 0,
                      addrs = { "192.0.2.81", "2001:db8::81" } } }, hosts_of(p))
    end)

    it("uses an IPv6-only domain", function()
      local p = ok("v6.nomx.test")
      assert.is_true(p.implicit)
      assert.same({ { name = "v6.nomx.test", pref = 0, addrs = { "2001:db8::82" } } }, hosts_of(p))
    end)

    it("uses the end of the CNAME chain as the implicit host", function()
      local p = ok("alias.nomx.test")
      assert.is_true(p.implicit)
      assert.equal("alias.nomx.test", p.domain)
      assert.same({ { name = "addr.nomx.test", pref = 0,
                      addrs = { "192.0.2.81", "2001:db8::81" } } }, hosts_of(p))
    end)

    it("is NOHOSTS for a domain with neither MX nor address", function()
      local _, info = fails("NOHOSTS", "permanent", "txt.nomx.test")
      assert.same({ { name = "txt.nomx.test", pref = 0, code = "NODATA" } }, skipped_of(info))
    end)

    it("is NOHOSTS when the implicit host's only address is private", function()
      local _, info = fails("NOHOSTS", "permanent", "private.nomx.test")
      assert.same({ { name = "private.nomx.test", pref = 0, code = "IGNORED" } }, skipped_of(info))
    end)

    it("uses the private address with ignore_targets = {}", function()
      local p = ok("private.nomx.test", { ignore_targets = {} })
      assert.is_true(p.implicit)
      assert.same({ { name = "private.nomx.test", pref = 0, addrs = { "10.0.0.1" } } }, hosts_of(p))
    end)
  end)

  describe("null MX (rule 4)", function()
    it("is permanent NULLMX, and the domain's A record is not used", function()
      local msg = fails("NULLMX", "permanent", "user@null.nullmx.test")
      assert.truthy(msg:find("null.nullmx.test", 1, true))
    end)

    it("is NULLMX for a single '.' at preference 10", function()
      fails("NULLMX", "permanent", "null10.nullmx.test")
    end)

    it("skips a '.' beside a real MX and uses the real one", function()
      local p = ok("beside.nullmx.test")
      assert.same({ { name = "mx.beside.nullmx.test", pref = 10, addrs = { "192.0.2.92" } } }, hosts_of(p))
      assert.same({ { name = ".", pref = 0, code = "NULLMX" } }, skipped_of(p))
    end)
  end)

  describe("unusable hosts (rule 9)", function()
    it("reports a dangling host as NXDOMAIN and fails NOHOSTS", function()
      local _, info = fails("NOHOSTS", "permanent", "dangling.broken.test")
      assert.same({ { name = "gone.dangling.broken.test", pref = 10, code = "NXDOMAIN" } }, skipped_of(info))
    end)

    it("skips a dangling host and uses the next", function()
      local p = ok("dangling2.broken.test")
      assert.same({ { name = "mx.dangling2.broken.test", pref = 20, addrs = { "192.0.2.101" } } }, hosts_of(p))
      assert.same({ { name = "gone.dangling2.broken.test", pref = 10, code = "NXDOMAIN" } }, skipped_of(p))
    end)

    it("reports a host without address as NODATA and fails NOHOSTS", function()
      local _, info = fails("NOHOSTS", "permanent", "nodata.broken.test")
      assert.same({ { name = "host.nodata.broken.test", pref = 10, code = "NODATA" } }, skipped_of(info))
    end)

    it("skips a host without address and uses the next", function()
      local p = ok("nodata2.broken.test")
      assert.same({ { name = "mx.nodata2.broken.test", pref = 20, addrs = { "192.0.2.102" } } }, hosts_of(p))
      assert.same({ { name = "host.nodata2.broken.test", pref = 10, code = "NODATA" } }, skipped_of(p))
    end)

    it("is temporary REFUSED when the only host's lookup is refused", function()
      local _, info = fails("REFUSED", "temporary", "refused.broken.test")
      assert.same({ { name = "mx.elsewhere.invalid", pref = 10, code = "REFUSED" } }, skipped_of(info))
    end)

    it("lets a temporary failure beat a permanent one", function()
      local _, info = fails("REFUSED", "temporary", "tempbeats.broken.test")
      assert.same({
        { name = "gone.tempbeats.broken.test", pref = 10, code = "NXDOMAIN" },
        { name = "mx.outside.invalid", pref = 20, code = "REFUSED" },
      }, skipped_of(info))
    end)
  end)

  describe("IP-literal exchanges (rule 10)", function()
    it("looks the exchange up as a name by default", function()
      local p = ok("iplit.broken.test")
      assert.same({ { name = "mx.iplit.broken.test", pref = 20, addrs = { "192.0.2.103" } } }, hosts_of(p))
      assert.same({ { name = "192.0.2.55", pref = 10, code = "NXDOMAIN" } }, skipped_of(p))
    end)

    it("uses the exchange as the address with allow_mx_to_ip", function()
      local p = ok("iplit.broken.test", { allow_mx_to_ip = true })
      assert.same({
        { name = "192.0.2.55", pref = 10, addrs = { "192.0.2.55" } },
        { name = "mx.iplit.broken.test", pref = 20, addrs = { "192.0.2.103" } },
      }, hosts_of(p))
      assert.same({ "192.0.2.55", "192.0.2.103" }, addrs_of_targets(p))
      assert.same({}, skipped_of(p))
    end)

    it("is NOHOSTS for a lone IP-literal exchange by default", function()
      local _, info = fails("NOHOSTS", "permanent", "iplitonly.broken.test")
      assert.same({ { name = "192.0.2.55", pref = 10, code = "NXDOMAIN" } }, skipped_of(info))
    end)

    it("uses a lone IP-literal exchange with allow_mx_to_ip", function()
      local p = ok("iplitonly.broken.test", { allow_mx_to_ip = true })
      assert.same({ { name = "192.0.2.55", pref = 10, addrs = { "192.0.2.55" } } }, hosts_of(p))
    end)
  end)

  describe("the target guard (rule 11)", function()
    it("drops private, loopback and ULA addresses: NOHOSTS", function()
      local _, info = fails("NOHOSTS", "permanent", "private.broken.test")
      assert.same({ { name = "mx.private.broken.test", pref = 10, code = "IGNORED" } }, skipped_of(info))
    end)

    it("keeps them all with ignore_targets = {}", function()
      local p = ok("private.broken.test", { ignore_targets = {} })
      assert.same({ { name = "mx.private.broken.test", pref = 10,
                      addrs = { "10.0.0.1", "127.0.0.1", "::1", "fd00::1" } } }, hosts_of(p))
    end)

    it("drops only the private and link-local addresses of a mixed host", function()
      local p = ok("privmix.broken.test")
      assert.same({ { name = "mx.privmix.broken.test", pref = 10,
                      addrs = { "192.0.2.104", "2001:db8::104" } } }, hosts_of(p))
    end)

    it("replaces the default list with ignore_targets", function()
      local p = ok("privmix.broken.test", { ignore_targets = { "192.0.2.0/24", "2001:db8::/32" } })
      assert.same({ { name = "mx.privmix.broken.test", pref = 10,
                      addrs = { "10.1.2.3", "fe80::1" } } }, hosts_of(p))
    end)

    it("judges an IPv4-mapped address as the IPv4 address it carries", function()
      local p = ok("mapped.broken.test")
      assert.same({ { name = "mx.mapped.broken.test", pref = 10,
                      addrs = { "::ffff:192.0.2.105" } } }, hosts_of(p))
      assert.equal("ipv6", p.targets[1].family)
    end)
  end)

  describe("self-exclusion (rule 8)", function()
    local MX1 = { name = "mx1.provider.self.test", pref = 10,
                  addrs = { "2001:db8::10:10", "203.0.113.10" } }
    local US = { name = "us.self.test", pref = 20, addrs = { "2001:db8::25", "203.0.113.25" } }
    local MX2 = { name = "mx2.provider.self.test", pref = 30, addrs = { "203.0.113.20" } }

    it("keeps every host when no self is given", function()
      local p = ok("backup.self.test")
      assert.same({ MX1, US, MX2 }, hosts_of(p))
      assert.is_nil(p.self_pref)
    end)

    it("drops hosts at and above our preference, found by name", function()
      local p = ok("backup.self.test", { self = { "us.self.test" } })
      assert.same({ MX1 }, hosts_of(p))
      assert.equal(20, p.self_pref)
      assert.equal(2, #p.targets)
    end)

    it("matches our name case-insensitively", function()
      local p = ok("backup.self.test", { self = { "US.Self.Test." } })
      assert.same({ MX1 }, hosts_of(p))
      assert.equal(20, p.self_pref)
    end)

    it("finds us by IPv4 address under another name", function()
      local p = ok("byaddr.self.test", { self = { "203.0.113.25" } })
      assert.same({ MX1 }, hosts_of(p))
      assert.equal(20, p.self_pref)
    end)

    it("finds us by IPv6 address under another name, however written", function()
      for _, me in ipairs { "2001:db8::25", "2001:DB8:0:0::25" } do
        local p = ok("byaddr6.self.test", { self = { me } })
        assert.same({ MX1 }, hosts_of(p))
        assert.equal(20, p.self_pref)
      end
    end)

    it("finds us by the mapped form of our IPv4 address in an AAAA record, whatever the family",
       function()
      -- mapped.self.test has A 198.51.100.25 and AAAA ::ffff:203.0.113.25:
      -- with family = "ipv4" the AAAA is still asked, only to recognise us
      for _, family in ipairs { "any", "ipv4" } do
        local p = ok("bymapped.self.test", { self = { "203.0.113.25" }, family = family })
        assert.same({ "mx1.provider.self.test" }, names_of(p), family)
        assert.equal(20, p.self_pref, family)
      end
    end)

    it("is LOOP when we are the best MX", function()
      local msg = fails("LOOP", "loop", "best.self.test", { self = { "us.self.test" } })
      assert.truthy(msg:find("best.self.test", 1, true))
    end)

    it("is LOOP when we share the best preference", function()
      fails("LOOP", "loop", "tied.self.test", { self = { "us.self.test" } })
    end)

    it("is LOOP when the implicit MX is us, by name or address", function()
      fails("LOOP", "loop", "us.self.test", { self = { "us.self.test" } })
      fails("LOOP", "loop", "us.self.test", { self = { "203.0.113.25" } })
      fails("LOOP", "loop", "us.self.test", { self = { "2001:db8::25" } })
    end)

    it("uses the implicit MX when it is not us", function()
      local p = ok("us.self.test")
      assert.is_true(p.implicit)
      assert.same({ { name = "us.self.test", pref = 0, addrs = { "2001:db8::25", "203.0.113.25" } } },
                  hosts_of(p))
    end)

    it("reports no self_pref where we are not an MX", function()
      local p = ok("notus.self.test", { self = { "us.self.test", "203.0.113.25", "2001:db8::25" } })
      assert.same({ MX1, { name = "mx2.provider.self.test", pref = 20, addrs = { "203.0.113.20" } } },
                  hosts_of(p))
      assert.is_nil(p.self_pref)
    end)
  end)

  describe("inputs that need no DNS", function()
    -- a nameserver nobody listens on: any query would fail (NETWORK or
    -- TIMEOUT), so a plan or BADNAME proves that nothing was asked
    local closed

    setup(function() closed = "127.0.0.1:" .. util.dead_port() end)

    local function dead(opts)
      return plans.resolver({ nameservers = { closed }, timeout = 2, tries = 1 }, opts)
    end

    local now = util.now

    it("checks that the closed nameserver really fails", function()
      local r = dead { timeout = 0.3 }
      local p, _, code = r:resolve("simple.mx.test")
      r:close()
      assert.is_nil(p)
      assert.equal("temporary", mxroute.class(code))
    end)

    it("delivers to an IPv4 address literal", function()
      local r = dead()
      local t0 = now()
      local p, msg, code = r:resolve("user@[192.0.2.1]")
      local dt = now() - t0
      r:close()
      assert(p, tostring(code) .. ": " .. tostring(msg))
      assert.is_true(dt < 0.5)
      assert.same({ { name = "[192.0.2.1]", pref = 0, addrs = { "192.0.2.1" } } }, hosts_of(p))
      assert.same({ { host = "[192.0.2.1]", pref = 0, addr = "192.0.2.1", family = "ipv4" } }, targets_of(p))
    end)

    it("delivers to an IPv6 address literal", function()
      local r = dead()
      local p, msg, code = r:resolve("user@[IPv6:2001:DB8::1]")
      r:close()
      assert(p, tostring(code) .. ": " .. tostring(msg))
      assert.equal(1, #p.targets)
      assert.equal("2001:db8::1", p.targets[1].addr)
      assert.equal("ipv6", p.targets[1].family)
    end)

    local BAD = {
      "", "user@", "u@example.com.", "a..b.test", "exa mple.test", "@example.test",
      ("a"):rep(64) .. ".test", ("abcdefghi."):rep(26) .. "test",
    }
    for _, input in ipairs(BAD) do
      it(("is BADNAME for %q, without a query"):format(#input > 40 and input:sub(1, 37) .. "..." or input),
         function()
        local r = dead()
        local t0 = now()
        local p, msg, code = r:resolve(input)
        local dt = now() - t0
        r:close()
        assert.is_nil(p)
        assert.equal("BADNAME", code)
        assert.equal("invalid", mxroute.class(code))
        assert.equal("string", type(msg))
        assert.is_true(#msg > 0)
        assert.is_true(dt < 0.5)
      end)
    end
  end)
end)
