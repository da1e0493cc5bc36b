-- mxroute --trace (doc/cli.md): every DNS query on standard error, one
-- line each (name, type, server, udp|tcp, rcode or the code of a try
-- without a usable reply, time), while standard output and the exit
-- status stay as without it. bin/mxroute runs as a subprocess against the
-- fault server, whose log says which queries were really sent.
local fault = require "support.fault"
local util = require "support.util"
local cli = require "mxroute.cli"

local LUA = util.interpreter()

-- Run bin/mxroute; returns stdout, stderr, status.
local function mxroute(args)
  return util.run(LUA .. " bin/mxroute", args)
end

local function lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

-- "query NAME TYPE SERVER PROTO RESULT MS ms" -> its fields.
local function parse(line)
  local name, qtype, server, proto, result, ms =
    line:match("^query (%S+) (%S+) (%S+) (%S+) (%S+) (%d+%.%d) ms$")
  if not name then return nil end
  return { name = name, type = qtype, server = server, proto = proto,
           result = result, ms = tonumber(ms) }
end

describe("mxroute --trace", function()
  local f

  setup(function()
    f = fault.start {
      ["ok.test"] = { MX = { { 10, "mx.ok.test" } } },
      ["mx.ok.test"] = { A = "192.0.2.1" },
      ["sf.test"] = { rcode = "SERVFAIL" },
      ["silent.test"] = { drop = true },
      ["big.test"] = { MX = { { 10, "mx.ok.test" } }, tc = true },
    }
  end)
  teardown(function() if f then f.stop() end end)

  it("prints one line per query on stderr: name, type, server, rcode, time", function()
    local before = #f.queries()
    local out, err, status = mxroute { "--trace", "--nameserver", f.addr,
      "--timeout", "0.3", "--tries", "1", "--concurrency", "1",
      "ok.test", "nx.test", "sf.test", "silent.test" }
    assert.equal(75, status) -- SERVFAIL and silence: temporary wins
    local sent = #f.queries() - before
    -- stdout is the same as without --trace
    local plain_out, plain_err, plain_status = mxroute { "--nameserver", f.addr,
      "--timeout", "0.3", "--tries", "1", "--concurrency", "1",
      "ok.test", "nx.test", "sf.test", "silent.test" }
    assert.equal(plain_status, status)
    assert.equal(plain_out, out)
    assert.equal("", plain_err)

    local seen = {}
    for _, line in ipairs(lines(err)) do
      local ev = parse(line)
      assert.is_table(ev, "not a trace line: " .. line)
      assert.equal(f.addr, ev.server)
      assert.equal("udp", ev.proto)
      assert.is_true(ev.ms >= 0)
      seen[#seen + 1] = ev.name .. " " .. ev.type .. " " .. ev.result
    end
    table.sort(seen)
    assert.same({
      "mx.ok.test A NOERROR",
      "mx.ok.test AAAA NOERROR",
      "nx.test MX NXDOMAIN",
      "ok.test MX NOERROR",
      "sf.test MX SERVFAIL",
      "silent.test MX TIMEOUT",
    }, seen)
    -- one line per query the server received in the traced run
    assert.equal(sent, #seen)
    -- the time of the try that timed out is its whole timeout
    for _, line in ipairs(lines(err)) do
      local ev = parse(line)
      if ev.result == "TIMEOUT" then assert.is_true(ev.ms >= 290) end
    end
  end)

  it("names TCP when a truncated answer is asked again over TCP", function()
    local _, err, status = mxroute { "--trace", "--nameserver", f.addr,
      "--timeout", "1", "--tries", "1", "big.test" }
    assert.equal(0, status)
    local protos = {}
    for _, line in ipairs(lines(err)) do
      local ev = assert(parse(line), line)
      if ev.name == "big.test" then protos[#protos + 1] = ev.proto end
    end
    table.sort(protos)
    assert.same({ "tcp", "udp" }, protos)
  end)

  it("is in --help", function()
    assert.truthy(cli.usage:find("--trace", 1, true))
  end)

  it("formats a refused reply as RCODE/CODE and a missing server as -", function()
    assert.equal("query x.test MX 127.0.0.1:53 udp NOERROR/FORMERR 1.5 ms",
      cli.trace_line { name = "x.test", type = "MX", server = "127.0.0.1:53",
                       tcp = false, status = "FORMERR", rcode = "NOERROR",
                       rtt = 0.0015 })
    assert.equal("query x.test A - tcp NETWORK 0.0 ms",
      cli.trace_line { name = "x.test", type = "A", tcp = true,
                       status = "NETWORK", rtt = 0 })
  end)
end)
