-- Routing policies (DESIGN 7) against the real authoritative server (Knot,
-- zone spec/zones/route.test.zone): Postfix transport(5) tables read as
-- Postfix 3.7 reads them — every nexthop form, the search order and its
-- traps, error: and retry: — and the rules of DESIGN 1 applied to routed
-- plans. Quotations are from transport(5) (Postfix 3.7) unless another
-- manual is named.
local knot = require "support.knot"
local fault = require "support.fault"
local plans = require "support.plans"
local mxroute = require "mxroute"

local k

local function resolver(routes, opts)
  local o = { nameservers = { k.addr }, timeout = 1, tries = 2, seed = 7, routes = routes }
  for key, v in pairs(opts or {}) do o[key] = v end
  return mxroute.resolver(o)
end

-- Resolve input under a transport(5) table (text) or routes object.
local function route(tbl, input, opts, topts)
  if type(tbl) == "string" then tbl = mxroute.routes.postfix(tbl, topts) end
  local r = resolver(tbl, opts)
  local p, msg, code, info = r:resolve(input)
  r:close()
  return p, msg, code, info
end

-- "addr port" of every target, in delivery order.
local function dest(p)
  assert(p, "expected a plan")
  local out = {}
  for i, t in ipairs(p.targets) do out[i] = t.addr .. " " .. t.port end
  return out
end

local function ok(tbl, input, opts, topts)
  local p, msg, code = route(tbl, input, opts, topts)
  assert(p, ("%s: expected a plan, got %s: %s"):format(input, tostring(code), tostring(msg)))
  return p
end

local RELAY = { "192.0.2.110", "2001:db8::110" }
local OWN_PARTNER = { "192.0.2.101 25" } -- partner.route.test's own MX
local HUB = { "192.0.2.121 25", "192.0.2.122 25" }

local function with_port(addrs, port)
  local out = {}
  for i, a in ipairs(addrs) do out[i] = a .. " " .. port end
  return out
end

describe("routes (Postfix transport(5)) against Knot", function()
  setup(function() k = knot.shared() end)

  describe("nexthop forms", function()
    it("[host]:port: the host's own A/AAAA at that port, never its MX", function()
      -- "disable MX (mail exchanger) DNS lookups with [host] or [host]:port";
      -- relay.route.test has an MX (mx.relay, 192.0.2.111) that must be ignored
      local p = ok("partner.route.test smtp:[relay.route.test]:587", "user@partner.route.test")
      assert.same(with_port(RELAY, 587), plans.sorted(dest(p)))
      assert.same({ "relay.route.test" }, plans.names_of(p))
      assert.is_false(p.implicit) -- no MX lookup was made, so no implicit MX
      assert.same({ key = "partner.route.test", transport = "smtp",
                    nexthop = "[relay.route.test]:587" }, p.route)
      assert.equal("partner.route.test", p.domain)
      assert.equal("user@partner.route.test", p.input)
    end)

    it("[host] without a port: port 25", function()
      local p = ok("partner.route.test smtp:[relay.route.test]", "user@partner.route.test")
      assert.same(with_port(RELAY, 25), plans.sorted(dest(p)))
    end)

    it("host: the MX of host (not of the recipient, not host's own A)", function()
      -- "The nexthop field usually specifies one recipient domain or
      -- hostname": mail goes where that name's MX says
      local p = ok("partner.route.test smtp:hub.route.test", "user@partner.route.test")
      assert.same(HUB, dest(p))
      assert.same({ "mx1.hub.route.test", "mx2.hub.route.test" }, plans.names_of(p))
    end)

    it("host:port: the MX of host, every target at that port", function()
      -- EXAMPLES: "example.com smtp:bar.example:2025 ... directs mail for
      -- user@example.com to host bar.example port 2025"
      local p = ok("partner.route.test smtp:hub.route.test:2025", "user@partner.route.test")
      assert.same({ "192.0.2.121 2025", "192.0.2.122 2025" }, dest(p))
    end)

    it("host:service: a symbolic service name is its port", function()
      -- "Instead of a numerical port a symbolic name may be used"
      local p = ok("partner.route.test smtp:hub.route.test:submission", "user@partner.route.test")
      assert.same({ "192.0.2.121 587", "192.0.2.122 587" }, dest(p))
    end)

    it("host without MX: its implicit MX at that port", function()
      local p = ok("partner.route.test smtp:plain.route.test:2525", "user@partner.route.test")
      assert.same({ "192.0.2.130 2525" }, dest(p))
      assert.is_true(p.implicit)
    end)

    it("[192.0.2.1] and [192.0.2.1]:port: the address itself, no DNS", function()
      -- "The [] form is required when you specify an IP address instead of a hostname"
      local p = ok("partner.route.test smtp:[192.0.2.77]", "user@partner.route.test")
      assert.same({ "192.0.2.77 25" }, dest(p))
      assert.equal("[192.0.2.77]", p.targets[1].host)
      p = ok("partner.route.test smtp:[192.0.2.77]:2525", "user@partner.route.test")
      assert.same({ "192.0.2.77 2525" }, dest(p))
    end)

    it("[ipv6:2001:db8::1] and [ipv6:...]:port", function()
      -- smtp(8): an IPv6 nexthop is written [ipv6:address]
      local p = ok("partner.route.test smtp:[ipv6:2001:DB8::77]:2525", "user@partner.route.test")
      assert.same({ "2001:db8::77 2525" }, dest(p))
      assert.equal("[IPv6:2001:db8::77]", p.targets[1].host)
      assert.equal("ipv6", p.targets[1].family)
    end)

    it("an empty nexthop: the recipient's domain, as without routes", function()
      -- "A non-null transport field with a null nexthop field resets the
      -- nexthop information to the recipient domain."
      local p = ok("partner.route.test slow:", "user@partner.route.test")
      assert.same(OWN_PARTNER, dest(p))
      assert.same({ key = "partner.route.test", transport = "slow", nexthop = "" }, p.route)
    end)

    it("a null transport and nexthop (':') changes nothing", function()
      -- "A null transport and null nexthop field means "do not change""
      local p = ok("partner.route.test :", "user@partner.route.test")
      assert.same(OWN_PARTNER, dest(p))
      assert.equal("smtp", p.route.transport)
    end)

    it("a null transport with a nexthop keeps the default transport", function()
      -- "A null transport field with non-null nexthop field does not
      -- modify the transport information."
      local p = ok("partner.route.test :[relay.route.test]", "user@partner.route.test")
      assert.same(with_port(RELAY, 25), plans.sorted(dest(p)))
      assert.same({ key = "partner.route.test", transport = "smtp",
                    nexthop = "[relay.route.test]" }, p.route)
    end)

    it("a list (Postfix 3.5): the first nexthop's targets, then the next", function()
      -- "the nexthop field may contain a list of nexthop destinations
      -- separated by comma or whitespace (Postfix 3.5 and later)"
      local p = ok("partner.route.test smtp:[relay.route.test]:587, hub.route.test",
                   "user@partner.route.test")
      local d = dest(p)
      assert.same(with_port(RELAY, 587), plans.sorted({ d[1], d[2] }))
      assert.same(HUB, { d[3], d[4] })
      p = ok("partner.route.test smtp:hub.route.test [192.0.2.77]", "user@partner.route.test")
      assert.same({ "192.0.2.121 25", "192.0.2.122 25", "192.0.2.77 25" }, dest(p))
    end)

    it("a list whose first nexthop fails uses the next; the failure is in skipped", function()
      local p = ok("partner.route.test smtp:nxdomain.route.test, [192.0.2.77]", "user@partner.route.test")
      assert.same({ "192.0.2.77 25" }, dest(p))
      assert.same({ { name = "nxdomain.route.test", pref = 0, code = "NXDOMAIN" } }, plans.skipped_of(p))
    end)

    it("a list whose nexthops all fail fails, naming the hop", function()
      local p, msg, code = route("partner.route.test smtp:nxdomain.route.test, nx2.route.test",
                                 "user@partner.route.test")
      assert.is_nil(p)
      assert.equal("NXDOMAIN", code)
      assert.matches("nxdomain.route.test", msg, 1, true)
    end)
  end)

  describe("the queries a route asks (fault server query log)", function()
    local f
    setup(function()
      f = fault.start {
        ["rcpt.test"] = { MX = { { 10, "mx.rcpt.test" } } },
        ["mx.rcpt.test"] = { A = "192.0.2.1" },
        ["gw.test"] = { MX = { { 10, "mx.gw.test" } }, A = "192.0.2.2" },
        ["mx.gw.test"] = { A = "192.0.2.3" },
      }
    end)
    teardown(function() if f then f.stop() end end)

    local function asked(t, input)
      local r = mxroute.resolver { nameservers = { f.addr }, timeout = 1, tries = 1,
                                   routes = mxroute.routes.postfix(t) }
      local before = #f.queries()
      local p = r:resolve(input)
      r:close()
      local out = {}
      for i, q in ipairs(f.queries()) do
        if i > before then out[#out + 1] = q.name:lower() .. " " .. q.type end
      end
      table.sort(out)
      return p, out
    end

    it("[host] asks A and AAAA of host and never MX", function()
      local p, q = asked("rcpt.test smtp:[gw.test]", "u@rcpt.test")
      assert.same({ "192.0.2.2 25" }, dest(p))
      assert.same({ "gw.test A", "gw.test AAAA" }, q)
    end)

    it("host asks MX of host, never of the recipient's domain", function()
      local p, q = asked("rcpt.test smtp:gw.test", "u@rcpt.test")
      assert.same({ "192.0.2.3 25" }, dest(p))
      assert.same({ "gw.test MX", "mx.gw.test A", "mx.gw.test AAAA" }, q)
    end)

    it("an address literal asks nothing; error: asks nothing", function()
      local _, q = asked("rcpt.test smtp:[192.0.2.9]", "u@rcpt.test")
      assert.same({}, q)
      _, q = asked("rcpt.test error:5.7.1 no", "u@rcpt.test")
      assert.same({}, q)
    end)
  end)

  describe("error: and retry:", function()
    it("error:5.x.y text fails permanently (REJECTED) with the text and the code", function()
      -- error(8): "The reason may be prefixed with an RFC 3463-compatible
      -- detail code"; the error service bounces
      local p, msg, code, info = route("old.route.test error:5.1.2 this domain is retired",
                                       "user@old.route.test")
      assert.is_nil(p)
      assert.equal("REJECTED", code)
      assert.equal("permanent", mxroute.class(code))
      assert.equal("this domain is retired", msg)
      assert.equal("5.1.2", info.enhanced)
      assert.same({ key = "old.route.test", transport = "error",
                    nexthop = "5.1.2 this domain is retired" }, info.route)
    end)

    it("error:text without a code: 5.0.0", function()
      -- error(8): "if none is specified a default 4.0.0 or 5.0.0 code is used"
      local _, msg, code, info = route(".route.test error:mail for *.route.test is not deliverable",
                                       "user@x.route.test")
      assert.equal("REJECTED", code)
      assert.equal("mail for *.route.test is not deliverable", msg)
      assert.equal("5.0.0", info.enhanced)
    end)

    it("retry:4.x.y text fails temporarily (DEFERRED); without a code 4.0.0", function()
      local _, msg, code, info = route("paused.route.test retry:4.4.1 paused for maintenance",
                                       "user@paused.route.test")
      assert.equal("DEFERRED", code)
      assert.equal("temporary", mxroute.class(code))
      assert.equal("paused for maintenance", msg)
      assert.equal("4.4.1", info.enhanced)
      _, _, code, info = route("paused.route.test retry:later", "user@paused.route.test")
      assert.equal("DEFERRED", code)
      assert.equal("4.0.0", info.enhanced)
    end)

    it("an invalid recipient stays BADNAME whatever the route", function()
      local _, _, code = route("* error:5.1.1 no", "user@")
      assert.equal("BADNAME", code)
    end)
  end)

  describe("search order", function()
    it(".domain does not match domain itself", function()
      -- ".domain: Deliver mail for any subdomain of domain" — the
      -- parent_domain_matches_subdomains default does not list transport_maps
      local t = ".partner.route.test smtp:[192.0.2.77]"
      assert.same(OWN_PARTNER, dest(ok(t, "user@partner.route.test")))
      assert.is_nil(ok(t, "user@partner.route.test").route)
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@sub.partner.route.test")))
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@deep.sub.partner.route.test")))
    end)

    it("domain does not match its subdomains (Postfix 3.7 default)", function()
      local t = "partner.route.test smtp:[192.0.2.77]"
      assert.same({ "192.0.2.102 25" }, dest(ok(t, "user@sub.partner.route.test")))
    end)

    it("parent_domain_matches_subdomains = true: domain matches its subdomains", function()
      -- "Otherwise, a domain name matches itself and its subdomains."
      local t = "partner.route.test smtp:[192.0.2.77]"
      local topts = { parent_domain_matches_subdomains = true }
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@sub.partner.route.test", nil, topts)))
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@deep.sub.partner.route.test", nil, topts)))
    end)

    it("an address key beats a domain key", function()
      -- TABLE SEARCH ORDER: user@domain before domain
      local t = "partner.route.test smtp:hub.route.test\nvip@partner.route.test smtp:[192.0.2.9]\n"
      assert.same({ "192.0.2.9 25" }, dest(ok(t, "vip@partner.route.test")))
      assert.same({ "192.0.2.9 25" }, dest(ok(t, "VIP@Partner.Route.Test")))
      assert.same(HUB, dest(ok(t, "other@partner.route.test")))
      assert.equal("vip@partner.route.test", ok(t, "vip@partner.route.test").route.key)
    end)

    it("domain beats .parent; the nearest parent is tried first; * comes last", function()
      local t = table.concat({
        "*                       smtp:[192.0.2.1]",
        ".partner.route.test     smtp:[192.0.2.2]",
        ".sub.partner.route.test smtp:[192.0.2.3]",
        "sub.partner.route.test  smtp:[192.0.2.4]",
      }, "\n")
      assert.same({ "192.0.2.4 25" }, dest(ok(t, "u@sub.partner.route.test")))
      assert.same({ "192.0.2.3 25" }, dest(ok(t, "u@deep.sub.partner.route.test")))
      assert.same({ "192.0.2.2 25" }, dest(ok(t, "u@x.partner.route.test")))
      assert.same({ "192.0.2.1 25" }, dest(ok(t, "u@partner.route.test")))
      assert.same({ "192.0.2.1 25" }, dest(ok(t, "u@hub.route.test")))
      assert.equal("*", ok(t, "u@hub.route.test").route.key)
    end)

    it("recipient_delimiter: user+extension@domain, then user@domain", function()
      -- "user+extension@domain ... user@domain" (with recipient_delimiter = +)
      local t = "user+vip@partner.route.test smtp:[192.0.2.5]\nuser@partner.route.test smtp:[192.0.2.6]\n"
      local d = { recipient_delimiter = "+" }
      assert.same({ "192.0.2.5 25" }, dest(ok(t, "user+vip@partner.route.test", nil, d)))
      assert.same({ "192.0.2.6 25" }, dest(ok(t, "user+other@partner.route.test", nil, d)))
      assert.same({ "192.0.2.6 25" }, dest(ok(t, "user@partner.route.test", nil, d)))
      -- the default recipient_delimiter is empty: no extension is split off
      assert.same(OWN_PARTNER, dest(ok(t, "user+other@partner.route.test")))
      assert.same({ "192.0.2.5 25" }, dest(ok(t, "user+vip@partner.route.test")))
    end)

    it("keys match like DNS names: case and a trailing dot do not matter", function()
      local t = "PARTNER.Route.Test. smtp:[192.0.2.77]\n.Sub.Partner.Route.Test. smtp:[192.0.2.78]\n"
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@partner.route.test")))
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@PARTNER.ROUTE.TEST")))
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "Partner.Route.Test.")))
      assert.same({ "192.0.2.78 25" }, dest(ok(t, "u@Deep.SUB.partner.route.test")))
    end)

    it("a literal recipient domain is a key of its own, without parents", function()
      local t = "[192.0.2.200] smtp:[192.0.2.77]\n* smtp:[192.0.2.1]\n"
      assert.same({ "192.0.2.77 25" }, dest(ok(t, "user@[192.0.2.200]")))
      assert.same({ "192.0.2.1 25" }, dest(ok(t, "user@[192.0.2.201]")))
    end)
  end)

  describe("DESIGN 1 rules on routed plans", function()
    it("a relay that is ourselves is a LOOP (by name or by address)", function()
      local t = "partner.route.test smtp:[relay.route.test]"
      local _, _, code = route(t, "user@partner.route.test", { self = { "relay.route.test" } })
      assert.equal("LOOP", code)
      _, _, code = route(t, "user@partner.route.test", { self = { "2001:db8::110" } })
      assert.equal("LOOP", code)
    end)

    it("family and prefer apply to the relay's addresses", function()
      local t = "partner.route.test smtp:[relay.route.test]:587"
      assert.same({ "192.0.2.110 587" }, dest(ok(t, "user@partner.route.test", { family = "ipv4" })))
      assert.same({ "2001:db8::110 587", "192.0.2.110 587" },
                  dest(ok(t, "user@partner.route.test", { prefer = "ipv6" })))
    end)

    it("the target guard drops a relay's private address (NOHOSTS)", function()
      local p, _, code, info = route("partner.route.test smtp:[private.route.test]", "user@partner.route.test")
      assert.is_nil(p)
      assert.equal("NOHOSTS", code)
      assert.equal("IGNORED", info.skipped[1].code)
    end)

    it("max_hosts limits the MX hosts of a nexthop", function()
      local p = ok("partner.route.test smtp:hub.route.test", "user@partner.route.test", { max_hosts = 1 })
      assert.same({ "192.0.2.121 25" }, dest(p))
    end)

    it("without routes every target has port 25 and no route", function()
      local r = resolver(nil)
      local p = r:resolve("user@partner.route.test")
      r:close()
      assert.same(OWN_PARTNER, dest(p))
      assert.is_nil(p.route)
      assert.is_nil(p.targets[1].fallback)
    end)
  end)

  describe("resolve, targets, submit and mxroute.resolve route alike", function()
    local T = "partner.route.test smtp:[192.0.2.77]:2525, hub.route.test:2026\n"

    it("gives the same targets and route through every call", function()
      local rt = mxroute.routes.postfix(T)
      local want = { "192.0.2.77 2525", "192.0.2.121 2026", "192.0.2.122 2026" }
      local r = resolver(rt)
      assert.same(want, dest(r:resolve("user@partner.route.test")))
      local got = {}
      for t in r:targets("user@partner.route.test") do got[#got + 1] = t.addr .. " " .. t.port end
      assert.same(want, got)
      local seen
      r:submit("user@partner.route.test", function(p) seen = p end)
      while not seen do r:step(1) end
      assert.same(want, dest(seen))
      assert.equal("partner.route.test", seen.route.key)
      r:close()
      local p = mxroute.resolve("user@partner.route.test",
                                { nameservers = { k.addr }, timeout = 1, routes = rt })
      assert.same(want, dest(p))
    end)

    it("targets yields a nexthop's targets before the next nexthop is resolved", function()
      local r = resolver(mxroute.routes.postfix(T))
      local it, st = r:targets("user@partner.route.test")
      local first = it(st)
      assert.equal("192.0.2.77", first.addr)
      assert.equal(2525, first.port)
      st:close()
      r:close()
    end)
  end)

  describe("the manual's EXAMPLES, with this zone's names", function()
    -- transport(5) EXAMPLES; my.domain = partner.route.test, example.com =
    -- sub.partner.route.test, hosts of route.test for the relays
    it("internal mail directly, everything else through a relay", function()
      local t = [[
# In order to deliver internal mail directly, while using a mail relay
# for all other mail, specify a null entry for internal destinations
partner.route.test    :
.partner.route.test   :
*            smtp:hub.route.test
]]
      assert.same(OWN_PARTNER, dest(ok(t, "user@partner.route.test")))
      assert.same({ "192.0.2.102 25" }, dest(ok(t, "user@sub.partner.route.test")))
      assert.same(HUB, dest(ok(t, "user@plain.route.test")))
    end)

    it("a domain and its subdomains through one transport and host", function()
      local t = "sub.partner.route.test      uucp:hub.route.test\n.sub.partner.route.test     uucp:hub.route.test\n"
      local p = ok(t, "user@sub.partner.route.test")
      assert.same(HUB, dest(p))
      assert.equal("uucp", p.route.transport)
      assert.same(HUB, dest(ok(t, "user@deep.sub.partner.route.test")))
    end)

    it("no nexthop: the domain's mail exchanger through that transport", function()
      local p = ok("sub.partner.route.test      slow:\n", "user@sub.partner.route.test")
      assert.same({ "192.0.2.102 25" }, dest(p))
      assert.equal("slow", p.route.transport)
    end)

    it("no transport: [gateway] for a domain and its subdomains", function()
      local t = "sub.partner.route.test      :[relay.route.test]\n.sub.partner.route.test     :[relay.route.test]\n"
      assert.same(with_port(RELAY, 25), plans.sorted(dest(ok(t, "user@sub.partner.route.test"))))
      assert.same(with_port(RELAY, 25), plans.sorted(dest(ok(t, "user@deep.sub.partner.route.test"))))
    end)

    it("host:service and a list of destinations", function()
      assert.same({ "192.0.2.121 2025", "192.0.2.122 2025" },
                  dest(ok("sub.partner.route.test      smtp:hub.route.test:2025\n", "user@sub.partner.route.test")))
      assert.same({ "192.0.2.121 25", "192.0.2.122 25", "192.0.2.130 25" },
                  dest(ok("sub.partner.route.test      smtp:hub.route.test, plain.route.test\n",
                          "user@sub.partner.route.test")))
    end)

    it("the error mailer bounces a domain's subdomains", function()
      local t = ".sub.partner.route.test     error:mail for *.sub.partner.route.test is not deliverable\n"
      local _, msg, code = route(t, "user@anything.sub.partner.route.test")
      assert.equal("REJECTED", code)
      assert.equal("mail for *.sub.partner.route.test is not deliverable", msg)
      assert.same({ "192.0.2.102 25" }, dest(ok(t, "user@sub.partner.route.test")))
    end)
  end)
end)
