-- The Knot fixture (spec/support/knot.lua), checked with a plain DNS
-- client (kdig), independently of mxroute.

local knot = require "support.knot"
local util = require "support.util"

local alive = util.alive

local function kdig(srv, args)
  return util.capture(("kdig @%s -p %d +time=1 +retry=0 %s 2>&1"):format(srv.host, srv.port, args))
end

local function status(out)
  return out:match("status: (%u+)")
end

local function flags(out)
  return " " .. (out:match(";; Flags: ([%a ]-);") or "") .. " "
end

local function answers(out, rrtype)
  local rrs = {}
  for line in out:gmatch("[^\n]+") do
    local owner, typ, rdata = line:match("^(%S+)%s+%d+%s+IN%s+(%u+)%s+(.-)%s*$")
    if owner and (not rrtype or typ == rrtype) then
      rrs[#rrs + 1] = { owner = owner, type = typ, rdata = rdata }
    end
  end
  return rrs
end

local function rdatas(out, rrtype)
  local list = {}
  for _, rr in ipairs(answers(out, rrtype)) do list[#list + 1] = rr.rdata end
  table.sort(list)
  return list
end

local function zone_names()
  local names = {}
  for file in util.capture("ls spec/zones"):gmatch("[^\n]+") do
    local zone = file:match("^(.+)%.zone$")
    if zone then names[#names + 1] = zone end
  end
  return names
end

describe("the shared Knot server", function()
  local srv

  setup(function()
    srv = knot.shared()
  end)

  it("listens on 127.0.0.1 at a high port", function()
    assert.equal("127.0.0.1", srv.host)
    assert.is_number(srv.port)
    assert.is_true(srv.port > 1024)
    assert.equal("127.0.0.1:" .. srv.port, srv.addr)
    if os.getenv("MXR_KNOT") then
      assert.equal(os.getenv("MXR_KNOT"), srv.addr)
    end
  end)

  it("answers SOA for every zone file in spec/zones", function()
    local zones = zone_names()
    assert.is_true(#zones >= 5)
    for _, zone in ipairs(zones) do
      local out = kdig(srv, zone .. ". SOA")
      assert.equal("NOERROR", status(out), zone)
      assert.matches(" aa ", flags(out), nil, true)
      assert.equal(1, #answers(out, "SOA"), zone)
    end
  end)

  it("serves primary and backup MX records", function()
    local out = kdig(srv, "backup.mx.test MX")
    assert.same({ "10 mx1.backup.mx.test.", "20 mx2.backup.mx.test." }, rdatas(out, "MX"))
  end)

  it("serves IPv4 and IPv6 addresses of a multihomed host", function()
    assert.same({ "192.0.2.31", "192.0.2.32" }, rdatas(kdig(srv, "mh.multi.mx.test A"), "A"))
    assert.same({ "2001:db8::31", "2001:db8::32" },
      rdatas(kdig(srv, "mh.multi.mx.test AAAA"), "AAAA"))
  end)

  it("serves a CNAME at the domain", function()
    local out = kdig(srv, "alias.cname.test MX")
    assert.same({ "target.cname.test." }, rdatas(out, "CNAME"))
    assert.same({ "10 mx.target.cname.test." }, rdatas(out, "MX"))
  end)

  it("serves a null MX", function()
    assert.same({ "0 ." }, rdatas(kdig(srv, "null.nullmx.test MX"), "MX"))
  end)

  it("answers NXDOMAIN for a missing name in a served zone", function()
    local out = kdig(srv, "nosuchname.mx.test MX")
    assert.equal("NXDOMAIN", status(out))
    assert.same({}, answers(out, "MX"))
  end)

  it("answers NODATA for a name without the asked type", function()
    local out = kdig(srv, "txt.nomx.test MX")
    assert.equal("NOERROR", status(out))
    assert.same({}, answers(out, "MX"))
  end)

  it("refuses names outside its zones", function()
    assert.equal("REFUSED", status(kdig(srv, "mx.elsewhere.invalid A")))
  end)

  it("truncates the 30-MX answer over UDP and sends it whole over TCP", function()
    local udp = kdig(srv, "+ignore +bufsize=1232 many.mx.test MX")
    assert.equal("NOERROR", status(udp))
    assert.matches(" tc ", flags(udp), nil, true)
    assert.same({}, answers(udp, "MX"))

    local tcp = kdig(srv, "+tcp many.mx.test MX")
    assert.equal("NOERROR", status(tcp))
    assert.not_matches(" tc ", flags(tcp), nil, true)
    local mx = answers(tcp, "MX")
    assert.equal(30, #mx)
    local size = tonumber(tcp:match("Received (%d+) B"))
    assert.is_true(size > 1232, "TCP answer of " .. tostring(size) .. " octets")
  end)
end)

describe("a Knot server of its own", function()
  it("starts on another port, serves, and is really gone after stop()", function()
    local shared = knot.shared()
    local srv = knot.start { zones = "spec/zones" }
    assert.are_not.equal(shared.port, srv.port)
    assert.is_number(srv.pid)
    assert.is_true(alive(srv.pid))
    if os.getenv("MXR_TEST_TMP") then
      local f = io.open(os.getenv("MXR_TEST_TMP") .. "/pids/knot-" .. srv.pid .. ".pid")
      assert.is_truthy(f, "pid recorded for the test runner")
      assert.equal(tostring(srv.pid), f:read("*l"))
      f:close()
    end
    assert.same({ "10 mx.simple.mx.test." }, rdatas(kdig(srv, "simple.mx.test MX"), "MX"))
    local listed = false
    for _, s in ipairs(knot.servers()) do listed = listed or s == srv end
    assert.is_true(listed, "listed among the servers to stop at exit")

    srv.stop()
    for _, s in ipairs(knot.servers()) do assert.are_not.equal(srv, s) end
    assert.is_false(alive(srv.pid))
    local f = io.open("/proc/" .. srv.pid .. "/stat")
    assert.is_nil(f, "no zombie left")
    local out = kdig(srv, "+tcp simple.mx.test MX")
    assert.is_nil(status(out))
    assert.matches("failed to query server", out, nil, true)
    srv.stop() -- idempotent
  end)

  it("serves another directory of zones", function()
    local srv = knot.start { zones = "examples/zones" }
    finally(srv.stop)
    local out = kdig(srv, "example.test MX")
    assert.equal("NOERROR", status(out))
    assert.is_true(#answers(out, "MX") >= 2)
  end)

  it("fails with a message when the zone directory does not exist", function()
    assert.has_error(function() knot.start { zones = "spec/no-such-dir" } end)
  end)
end)
