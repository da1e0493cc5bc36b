-- The fault DNS server: every behaviour checked on the wire, with kdig
-- and with raw UDP/TCP exchanges.
local uv = require "luv"
local fault = require "support.fault"
local wire = require "support.dnswire"
local util = require "support.util"

local shell_quote = util.quote

---------------------------------------------------------------------------
-- Clients

-- Run kdig against `f` and parse what it prints.
local function kdig(f, name, qtype, ...)
  local cmd = { "kdig", "@127.0.0.1", "-p", tostring(f.port), "+time=1", "+retry=0",
                shell_quote(name), qtype, ... }
  local out = util.capture(table.concat(cmd, " ") .. " 2>&1")
  local r = { text = out, flags = {}, answers = {} }
  r.status = out:match("status: ([%w ]-);")
  r.id = tonumber(out:match("id: (%d+)"))
  local flags = out:match(";; Flags:([%a ]*);")
  for fl in (flags or ""):gmatch("%a+") do r.flags[fl] = true end
  r.ancount = tonumber(out:match("ANSWER: (%d+)"))
  r.via = out:match("%((%u+)%) in [%d.]+ ms")
  local section = out:match(";; ANSWER SECTION:\n(.-)\n\n")
  for line in (section or ""):gmatch("[^\n]+") do
    local owner, ttl, class, rtype, data = line:match("^(%S+)%s+(%d+)%s+(%S+)%s+(%S+)%s+(.-)%s*$")
    r.answers[#r.answers + 1] = { owner = owner, ttl = tonumber(ttl), class = class,
                                  type = rtype, data = data }
  end
  return r
end

local function now_ms() return uv.hrtime() / 1e6 end

-- The loop's clock only moves while uv.run runs: refresh it before arming
-- a timer, or the timer counts from whenever the loop last ran.
local function new_timer()
  uv.update_time()
  return uv.new_timer()
end

-- Send UDP datagrams from one socket; collect what comes back until
-- `count` replies arrived or `wait` ms passed.  Returns a list of
-- { data, ms } (ms since the first send).
local function udp_exchange(port, packets, count, wait)
  local sock = uv.new_udp()
  assert(sock:bind("127.0.0.1", 0))
  local got, timer = {}, new_timer()
  local t0 = now_ms()
  local function finish()
    if not sock:is_closing() then sock:recv_stop(); sock:close() end
    if not timer:is_closing() then timer:close() end
  end
  assert(sock:recv_start(function(err, data)
    if err or not data then return end
    got[#got + 1] = { data = data, ms = now_ms() - t0 }
    if count and #got >= count then finish() end
  end))
  if type(packets) == "string" then packets = { packets } end
  for _, p in ipairs(packets) do assert(sock:try_send(p, "127.0.0.1", port)) end
  timer:start(wait or 2000, 0, finish)
  uv.run()
  return got
end

-- One reply to one UDP query; fails the test when none comes.
local function udp_ask(port, q, wait)
  local got = udp_exchange(port, q, 1, wait)
  assert(got[1], "no UDP reply")
  return got[1].data, got[1].ms
end

-- Send `chunks` (strings, or { string, pause_ms }) on one TCP connection;
-- collect length-framed replies until `count` arrived, the server closed
-- or `wait` ms passed.  Returns the list of { data, ms } and whether the
-- server closed the connection.
local function tcp_exchange(port, chunks, count, wait)
  local c, timer = uv.new_tcp(), new_timer()
  local frames, buf, closed, failure = {}, "", false, nil
  local t0 = now_ms()
  local function finish()
    if not c:is_closing() then c:close() end
    if not timer:is_closing() then timer:close() end
  end
  -- no assertions in callbacks: an error there ends the process
  c:connect("127.0.0.1", port, function(cerr)
    if cerr then failure = cerr; return finish() end
    c:read_start(function(err, data)
      if err or not data then closed = true; return finish() end
      buf = buf .. data
      while #buf >= 2 and #buf >= 2 + wire.get_u16(buf, 1) do
        local len = wire.get_u16(buf, 1)
        frames[#frames + 1] = { data = buf:sub(3, 2 + len), ms = now_ms() - t0 }
        buf = buf:sub(3 + len)
      end
      if count and #frames >= count then finish() end
    end)
    local i = 0
    local function send_next()
      i = i + 1
      local ch = chunks[i]
      if ch == nil or c:is_closing() then return end
      if type(ch) == "string" then ch = { ch } end
      c:write(ch[1])
      if ch[2] then
        local t = uv.new_timer()
        t:start(ch[2], 0, function() t:close(); send_next() end)
      else
        send_next()
      end
    end
    send_next()
  end)
  timer:start(wait or 2000, 0, finish)
  uv.run()
  assert(not failure, failure)
  return frames, closed
end

local function frame(q) return wire.u16(#q) .. q end

local function tcp_ask(port, q, wait)
  local frames = tcp_exchange(port, { frame(q) }, 1, wait)
  assert(frames[1], "no TCP reply")
  return frames[1].data, frames[1].ms
end

local function query(name, qtype, id, edns)
  return wire.query { id = id or 0x1234, name = name, type = qtype or "A", edns = edns }
end

local function parse(msg)
  local m, err = wire.parse(msg)
  assert(m, "unparseable reply: " .. tostring(err) .. " " .. wire.hex(msg))
  return m
end

local function proc_gone(pid) return not util.alive(pid) end

local function wait_gone(pid, seconds)
  return util.wait_until(function() return proc_gone(pid) end, seconds, 20)
end

local function tmpname(suffix)
  local base = os.getenv("MXR_TEST_TMP")
  local dir = base and base ~= "" and base or "/tmp"
  return string.format("%s/fault-spec-%d-%d%s", dir, uv.os_getpid(),
                       math.random(1, 1e9), suffix or "")
end

---------------------------------------------------------------------------

describe("the fault server", function()
  local f
  local rules = {
    ["ok.test"] = {
      MX = { { 10, "mx1.ok.test" }, { 20, "mx2.ok.test" } },
      A = { "192.0.2.1", "192.0.2.2" }, AAAA = { "2001:db8::1" },
      TXT = { "v=spf1 -all", { "two", "strings" } }, ttl = 300,
    },
    ["mx1.ok.test"] = { A = "192.0.2.11", ttl = 60 },
    ["alias.test"] = { CNAME = "Ok.Test." },
    ["loop1.test"] = { CNAME = "loop2.test" },
    ["loop2.test"] = { CNAME = "loop1.test" },
    ["empty.test"] = {},
    ["slow.test"] = { A = { "192.0.2.9" }, delay = 300 },
    ["sf.test"] = { rcode = "SERVFAIL" },
    ["refused.test"] = { rcode = "REFUSED" },
    ["nx.test"] = { rcode = "NXDOMAIN" },
    ["formerr.test"] = { rcode = "FORMERR" },
    ["notimp.test"] = { rcode = "NOTIMP" },
    ["r6.test"] = { rcode = 6 }, ["r9.test"] = { rcode = 9 },
    ["r11.test"] = { rcode = 11 }, ["r15.test"] = { rcode = 15 },
    ["r7data.test"] = { rcode = 7, keep_answers = true, MX = { { 1, "h.r7data.test" } } },
    ["drop.test"] = { drop = true },
    ["close.test"] = { close = true, A = "192.0.2.1" },
    ["tc.test"] = { MX = { { 10, "mx1.tc.test" }, { 20, "mx2.tc.test" } }, tc = true },
    ["short.test"] = { A = "192.0.2.1", short = true },
    ["short11.test"] = { A = "192.0.2.1", short = 11 },
    ["garbage.test"] = { MX = { { 10, "mx.garbage.test" } }, malformed = true },
    ["garbage-empty.test"] = { malformed = true },
    ["garbage-count.test"] = { MX = { { 10, "mx.garbage.test" } }, malformed = "count" },
    ["garbage-loop.test"] = { malformed = "loop" },
    ["garbage-len.test"] = { A = "192.0.2.1", malformed = "rdlength" },
    ["badid.test"] = { A = "192.0.2.1", wrong_id = true },
    ["badid-ok.test"] = { A = "192.0.2.1", wrong_id = true, then_ok = true },
    ["noqr.test"] = { A = "192.0.2.1", qr0 = true },
    ["wrongq.test"] = { MX = { { 10, "mx.wrongq.test" } }, question = "other.test" },
    ["wrongt.test"] = { MX = { { 10, "mx.wrongt.test" } }, qtype = "A" },
    ["noq.test"] = { MX = { { 10, "mx.noq.test" } }, question = false },
    ["foreign.test"] = { MX = { { 10, "mx.evil.test" } }, owner = "evil.test" },
    ["mixed.test"] = {
      MX = { { 10, "h.mixed.test" } }, A = "192.0.2.5", AAAA = "2001:db8::5",
      types = { AAAA = { rcode = "SERVFAIL" }, A = { delay = 200 } },
    },
    ["flaky.test"] = { A = "192.0.2.7", rcode = "SERVFAIL", fail_first = 2 },
    ["flaky-type.test"] = {
      A = "192.0.2.8", AAAA = "2001:db8::8",
      types = { AAAA = { rcode = "REFUSED", fail_first = 1 } },
    },
    ["proto.test"] = { A = "192.0.2.3", udp = { rcode = "SERVFAIL" } },
    ["big.test"] = { A = (function()
      local t = {}
      for i = 1, 40 do t[i] = "192.0.2." .. i end
      return t
    end)() },
    ["biglimit.test"] = { A = { "192.0.2.1", "192.0.2.2", "192.0.2.3" }, udp_limit = 40 },
    ["slowsf.test"] = { rcode = "SERVFAIL", delay = 150 },
    ["knobs.test"] = { A = "192.0.2.1", opcode = 2, aa = false, qclass = 3 },
    ["mapped.test"] = { AAAA = "::ffff:192.0.2.1", NS = { "ns1.test", "ns2.test" } },
    ["gap.test"] = { A = "192.0.2.1", wrong_id = true, then_ok = 120 },
    ["tcponly.test"] = { A = "192.0.2.1", tcp = { drop = true },
                         types = { MX = { tcp = { drop = false, rcode = "REFUSED" } } } },
  }

  setup(function() f = fault.start(rules) end)
  teardown(function() if f then f.stop() end end)

  describe("with normal data", function()
    it("answers MX authoritatively, echoing the question", function()
      local r = kdig(f, "ok.test", "MX")
      assert.equal("NOERROR", r.status)
      assert.is_true(r.flags.qr and r.flags.aa and r.flags.rd)
      assert.equal(2, r.ancount)
      assert.same({ owner = "ok.test.", ttl = 300, class = "IN", type = "MX", data = "10 mx1.ok.test." },
                  r.answers[1])
      assert.equal("20 mx2.ok.test.", r.answers[2].data)
      local m = parse(udp_ask(f.port, query("ok.test", "MX", 0x4321)))
      assert.equal(0x4321, m.id)
      assert.is_true(m.qr and m.aa and m.rd)
      assert.is_false(m.tc)
      assert.equal(0, m.rcode)
      assert.equal(1, m.qdcount)
      assert.same({ name = "ok.test", type = 15, class = 1 }, m.questions[1])
      assert.equal(10, m.answers[1].preference)
      assert.equal("mx1.ok.test", m.answers[1].exchange)
    end)

    it("answers A, AAAA and TXT, over UDP and TCP", function()
      local a = kdig(f, "ok.test", "A")
      assert.equal(2, a.ancount)
      assert.equal("192.0.2.1", a.answers[1].data)
      assert.equal("192.0.2.2", a.answers[2].data)
      local aaaa = kdig(f, "ok.test", "AAAA", "+tcp")
      assert.equal("TCP", aaaa.via)
      assert.equal("2001:db8::1", aaaa.answers[1].data)
      local txt = kdig(f, "ok.test", "TXT")
      assert.equal('"v=spf1 -all"', txt.answers[1].data)
      assert.equal('"two" "strings"', txt.answers[2].data)
    end)

    it("matches names case-insensitively and ignores a final dot", function()
      local r = kdig(f, "OK.Test.", "MX")
      assert.equal("NOERROR", r.status)
      assert.equal(2, r.ancount)
      local m = parse(udp_ask(f.port, query("mX1.OK.tEsT", "A")))
      assert.equal("mX1.OK.tEsT", m.questions[1].name) -- echoed as asked
      assert.equal("192.0.2.11", m.answers[1].address)
      assert.equal(60, m.answers[1].ttl)
    end)

    it("follows a CNAME to records the rules know, like a real server", function()
      local r = kdig(f, "alias.test", "MX")
      assert.equal(3, r.ancount)
      assert.same({ "alias.test.", "CNAME", "Ok.Test." },
                  { r.answers[1].owner, r.answers[1].type, r.answers[1].data })
      assert.equal("Ok.Test.", r.answers[2].owner)
      assert.equal("MX", r.answers[2].type)
      local c = parse(udp_ask(f.port, query("alias.test", "CNAME")))
      assert.equal(1, c.ancount)
      assert.equal("Ok.Test", c.answers[1].target)
    end)

    it("ends a CNAME loop after one turn", function()
      local m = parse(udp_ask(f.port, query("loop1.test", "A")))
      assert.equal(0, m.rcode)
      assert.equal(2, m.ancount)
      assert.equal("loop2.test", m.answers[1].target)
      assert.equal("loop1.test", m.answers[2].target)
    end)

    it("answers NODATA for a listed name without records of the type", function()
      local m = parse(udp_ask(f.port, query("empty.test", "MX")))
      assert.equal(0, m.rcode)
      assert.equal(0, m.ancount)
      local r = kdig(f, "ok.test", "CNAME")
      assert.equal("NOERROR", r.status)
      assert.equal(0, r.ancount)
    end)

    it("answers NXDOMAIN, with no records, for names not listed", function()
      local r = kdig(f, "unknown.test", "MX")
      assert.equal("NXDOMAIN", r.status)
      assert.equal(0, r.ancount)
      local m = parse(udp_ask(f.port, query("sub.ok.test", "A")))
      assert.equal(3, m.rcode)
      assert.is_true(m.aa)
      assert.equal(0, m.ancount + m.nscount + m.arcount)
    end)

    it("accepts EDNS queries and does not echo OPT", function()
      local m = parse(udp_ask(f.port, query("ok.test", "MX", 77, 1232)))
      assert.equal(2, m.ancount)
      assert.equal(0, m.arcount)
      local e = f.queries { name = "ok.test", id = 77 }
      assert.equal(1, #e)
      assert.is_true(e[1].edns)
    end)
  end)

  describe("rcodes", function()
    for name, code in pairs { ["sf.test"] = 2, ["refused.test"] = 5, ["nx.test"] = 3,
                              ["formerr.test"] = 1, ["notimp.test"] = 4 } do
      it("sends rcode " .. code .. " for " .. name, function()
        local m = parse(udp_ask(f.port, query(name, "MX")))
        assert.equal(code, m.rcode)
        assert.is_true(m.qr)
        assert.equal(0, m.ancount)
        assert.equal(name, m.questions[1].name)
      end)
    end

    it("names them as kdig does", function()
      assert.equal("SERVFAIL", kdig(f, "sf.test", "MX").status)
      assert.equal("REFUSED", kdig(f, "refused.test", "MX", "+tcp").status)
      assert.equal("RCODE 11", kdig(f, "r11.test", "MX").status)
    end)

    it("sends unassigned rcodes 6-15 as they are", function()
      for name, code in pairs { ["r6.test"] = 6, ["r9.test"] = 9, ["r11.test"] = 11,
                                ["r15.test"] = 15 } do
        local msg = udp_ask(f.port, query(name, "MX"))
        assert.equal(code, wire.get_u16(msg, 3) % 16, name)
        local h = wire.parse_header(msg)
        assert.equal(code, h.rcode)
        assert.is_true(h.qr)
      end
    end)

    it("keeps the records beside an error rcode with keep_answers", function()
      local m = parse(udp_ask(f.port, query("r7data.test", "MX")))
      assert.equal(7, m.rcode)
      assert.equal(1, m.ancount)
      assert.equal("h.r7data.test", m.answers[1].exchange)
    end)

    it("answers an unlisted name with the default behaviour", function()
      local g = fault.start { default = "refused", ["ok.test"] = { A = "192.0.2.1" } }
      local ok, err = pcall(function()
        assert.equal(5, parse(udp_ask(g.port, query("other.test", "A"))).rcode)
        assert.equal(0, parse(udp_ask(g.port, query("ok.test", "A"))).rcode)
      end)
      g.stop()
      assert(ok, err)
      local d = fault.start { default = { drop = true } }
      local got = udp_exchange(d.port, query("any.test", "A"), 1, 500)
      d.stop()
      assert.equal(0, #got)
    end)
  end)

  describe("timing", function()
    it("delays a reply by at least the given milliseconds", function()
      local msg, ms = udp_ask(f.port, query("slow.test", "A"))
      assert.is_true(ms >= 300, "reply after " .. ms .. " ms")
      assert.equal("192.0.2.9", parse(msg).answers[1].address)
      local _, tms = tcp_ask(f.port, query("slow.test", "A"))
      assert.is_true(tms >= 300, "TCP reply after " .. tms .. " ms")
    end)

    it("delays combined with an rcode", function()
      local msg, ms = udp_ask(f.port, query("slowsf.test", "A"))
      assert.is_true(ms >= 150)
      assert.equal(2, parse(msg).rcode)
    end)

    it("serves other queries while one is delayed", function()
      local got = udp_exchange(f.port, { query("slow.test", "A", 1001), query("ok.test", "A", 1002) }, 2)
      assert.equal(2, #got)
      assert.equal(1002, wire.get_u16(got[1].data, 1))
      assert.equal(1001, wire.get_u16(got[2].data, 1))
      assert.is_true(got[1].ms < got[2].ms)
      local log = f.log()
      local fast, slow
      for i, e in ipairs(log) do
        if e.event == "reply" and e.id == 1002 then fast = i end
        if e.event == "reply" and e.id == 1001 then slow = i end
      end
      assert.truthy(fast and slow)
      assert.is_true(fast < slow)
      assert.is_true(log[fast].t < log[slow].t)
    end)

    it("never answers a dropped query", function()
      local got = udp_exchange(f.port, query("drop.test", "MX", 4242), 1, 1000)
      assert.equal(0, #got)
      local frames, closed = tcp_exchange(f.port, { frame(query("drop.test", "MX", 4243)) }, 1, 1000)
      assert.equal(0, #frames)
      assert.is_false(closed)
      local r = kdig(f, "drop.test", "MX")
      assert.is_nil(r.status)
      assert.truthy(r.text:find("timeout", 1, true))
      assert.equal(1, #f.queries { id = 4242, action = "drop" })
      assert.equal(0, #f.replies { name = "drop.test" })
    end)

    it("closes the TCP connection without answering with close", function()
      local frames, closed = tcp_exchange(f.port, { frame(query("close.test", "A")) }, 1, 1000)
      assert.equal(0, #frames)
      assert.is_true(closed)
      assert.equal(0, #udp_exchange(f.port, query("close.test", "A"), 1, 300))
    end)
  end)

  describe("truncation", function()
    it("sets TC with an empty answer over UDP and answers in full over TCP", function()
      local m = parse(udp_ask(f.port, query("tc.test", "MX", 500)))
      assert.is_true(m.tc)
      assert.equal(0, m.ancount)
      assert.equal("tc.test", m.questions[1].name)
      local t = parse(tcp_ask(f.port, query("tc.test", "MX", 501)))
      assert.is_false(t.tc)
      assert.equal(2, t.ancount)
      assert.equal("mx2.tc.test", t.answers[2].exchange)
    end)

    it("shows kdig the TC bit and lets it retry over TCP", function()
      local raw = kdig(f, "tc.test", "MX", "+ignore")
      assert.is_true(raw.flags.tc)
      assert.equal(0, raw.ancount)
      assert.equal("UDP", raw.via)
      local before = #f.queries("tc.test")
      local r = kdig(f, "tc.test", "MX")
      assert.equal("TCP", r.via)
      assert.equal(2, r.ancount)
      local qs = f.queries("tc.test")
      assert.equal(before + 2, #qs)
      assert.equal("udp", qs[#qs - 1].proto)
      assert.equal("tcp", qs[#qs].proto)
      assert.equal(qs[#qs - 1].id, qs[#qs].id)
    end)

    it("truncates UDP answers larger than the client can take", function()
      local small = parse(udp_ask(f.port, query("big.test", "A")))
      assert.is_true(small.tc)
      assert.equal(0, small.ancount)
      local edns = parse(udp_ask(f.port, query("big.test", "A", 9, 1232)))
      assert.is_false(edns.tc)
      assert.equal(40, edns.ancount)
      assert.is_true(edns.size > 512)
      local tcp = parse(tcp_ask(f.port, query("big.test", "A")))
      assert.equal(40, tcp.ancount)
      local limited = parse(udp_ask(f.port, query("biglimit.test", "A")))
      assert.is_true(limited.tc)
    end)
  end)

  describe("broken replies", function()
    it("sends fewer than 12 octets with short", function()
      local q = query("short.test", "A", 0xabcd)
      local msg = udp_ask(f.port, q)
      assert.equal(5, #msg)
      assert.equal(0xabcd, wire.get_u16(msg, 1))
      assert.is_nil(wire.parse_header(msg))
      local tmsg = tcp_ask(f.port, q)
      assert.equal(5, #tmsg)
      assert.equal(11, #udp_ask(f.port, query("short11.test", "A")))
    end)

    it("truncates the answer section mid-record with malformed", function()
      local msg = udp_ask(f.port, query("garbage.test", "MX", 0x0102))
      local h = wire.parse_header(msg)
      assert.equal(0x0102, h.id)
      assert.is_true(h.qr)
      assert.equal(0, h.rcode)
      assert.equal(1, h.qdcount)
      assert.equal(1, h.ancount)
      local m, err, partial = wire.parse(msg)
      assert.is_nil(m)
      assert.truthy(err:find("answer", 1, true))
      assert.equal("garbage.test", partial.questions[1].name)
      assert.equal(15, partial.questions[1].type)
      -- without records to cut, it claims one it does not hold
      local e = wire.parse_header(udp_ask(f.port, query("garbage-empty.test", "MX")))
      assert.equal(1, e.ancount)
      assert.is_nil(wire.parse(udp_ask(f.port, query("garbage-empty.test", "MX"))))
    end)

    it("makes counts lie, names loop and rdlength overrun on request", function()
      local c = udp_ask(f.port, query("garbage-count.test", "MX"))
      assert.equal(2, wire.parse_header(c).ancount)
      local _, cerr = wire.parse(c)
      assert.truthy(cerr:find("past the end", 1, true))
      local _, lerr = wire.parse(udp_ask(f.port, query("garbage-loop.test", "A")))
      assert.equal("answer: compression pointer loop", lerr)
      local _, rerr = wire.parse(udp_ask(f.port, query("garbage-len.test", "A")))
      assert.equal("answer: rdata runs past the end", rerr)
    end)

    it("replies with the ID xor 0x5555 with wrong_id", function()
      local got = udp_exchange(f.port, query("badid.test", "A", 0x1234), 2, 400)
      assert.equal(1, #got)
      assert.equal(0x4761, wire.get_u16(got[1].data, 1)) -- 0x1234 xor 0x5555
      assert.equal(1, parse(got[1].data).ancount)
    end)

    it("sends the right reply 50 ms after the wrong one with then_ok", function()
      local got = udp_exchange(f.port, query("badid-ok.test", "A", 0x1234), 2)
      assert.equal(2, #got)
      assert.equal(0x4761, wire.get_u16(got[1].data, 1))
      assert.equal(0x1234, wire.get_u16(got[2].data, 1))
      assert.is_true(got[2].ms - got[1].ms >= 45, "gap " .. (got[2].ms - got[1].ms))
      local reps = f.replies("badid-ok.test")
      assert.same({ 0x4761, 0x1234 }, { reps[#reps - 1].id, reps[#reps].id })
    end)

    it("echoes the query back with QR=0 with qr0", function()
      local q = query("noqr.test", "A", 0x7777, 1232)
      local msg = udp_ask(f.port, q)
      assert.equal(q, msg)
      assert.is_false(wire.parse_header(msg).qr)
      assert.equal(q, tcp_ask(f.port, q))
    end)

    it("names another name or type in the question on request", function()
      local m = parse(udp_ask(f.port, query("wrongq.test", "MX")))
      assert.equal("other.test", m.questions[1].name)
      assert.equal(15, m.questions[1].type)
      assert.equal("wrongq.test", m.answers[1].name)
      local t = parse(udp_ask(f.port, query("wrongt.test", "MX")))
      assert.equal("wrongt.test", t.questions[1].name)
      assert.equal(1, t.questions[1].type)
      assert.equal(15, t.answers[1].type)
      local n = parse(udp_ask(f.port, query("noq.test", "MX")))
      assert.equal(0, n.qdcount)
      assert.equal(1, n.ancount)
    end)

    it("puts records under another owner with owner", function()
      local m = parse(udp_ask(f.port, query("foreign.test", "MX")))
      assert.equal("foreign.test", m.questions[1].name)
      assert.equal(1, m.ancount)
      assert.equal("evil.test", m.answers[1].name)
      assert.equal("mx.evil.test", m.answers[1].exchange)
    end)
  end)

  describe("composition", function()
    it("applies per-type behaviours", function()
      assert.equal("h.mixed.test", parse(udp_ask(f.port, query("mixed.test", "MX"))).answers[1].exchange)
      assert.equal(2, parse(udp_ask(f.port, query("mixed.test", "AAAA"))).rcode)
      local msg, ms = udp_ask(f.port, query("mixed.test", "A"))
      assert.is_true(ms >= 200)
      assert.equal("192.0.2.5", parse(msg).answers[1].address)
    end)

    it("fails the first N queries of a name with fail_first", function()
      local codes = {}
      for i = 1, 4 do
        local qtype = (i % 2 == 1) and "A" or "MX"
        codes[i] = parse(udp_ask(f.port, query("flaky.test", qtype, i))).rcode
      end
      assert.same({ 2, 2, 0, 0 }, codes)
      local ok = parse(udp_ask(f.port, query("flaky.test", "A")))
      assert.equal("192.0.2.7", ok.answers[1].address)
      local ns = {}
      for _, e in ipairs(f.queries("flaky.test")) do ns[#ns + 1] = e.n end
      assert.same({ 1, 2, 3, 4, 5 }, ns)
    end)

    it("counts per type when fail_first is under types", function()
      assert.equal(0, parse(udp_ask(f.port, query("flaky-type.test", "A"))).rcode)
      assert.equal(5, parse(udp_ask(f.port, query("flaky-type.test", "AAAA"))).rcode)
      local m = parse(udp_ask(f.port, query("flaky-type.test", "AAAA")))
      assert.equal(0, m.rcode)
      assert.equal("2001:db8::8", m.answers[1].address)
      local ns = {}
      for _, e in ipairs(f.queries("flaky-type.test")) do ns[#ns + 1] = e.n end
      assert.same({ 1, 2, 3 }, ns) -- the log counts per name
    end)

    it("applies udp and tcp overrides", function()
      assert.equal(2, parse(udp_ask(f.port, query("proto.test", "A"))).rcode)
      local t = parse(tcp_ask(f.port, query("proto.test", "A")))
      assert.equal(0, t.rcode)
      assert.equal("192.0.2.3", t.answers[1].address)
    end)

    it("hands full control to a raw function from a rules file", function()
      local path = tmpname(".lua")
      local fh = assert(io.open(path, "w"))
      fh:write([[
        local wire = ...
        return {
          ["raw.test"] = { raw = function(q, id, ctx)
            return wire.u16(id) .. "RAW:" .. ctx.proto .. ":" .. ctx.type .. ":" .. ctx.n
                .. ":" .. #q
          end },
          ["two.test"] = { raw = function() return { "one", "two" } end },
          ["none.test"] = { raw = function() return nil end },
          ["boom.test"] = { raw = function() error("boom") end },
        }
      ]])
      fh:close()
      local g = fault.start(path)
      local ok, err = pcall(function()
        local q = query("raw.test", "MX", 0x0a0b)
        assert.equal("\10\11RAW:udp:MX:1:" .. #q, udp_ask(g.port, q))
        assert.equal("\10\11RAW:tcp:MX:2:" .. #q, tcp_ask(g.port, q))
        local two = udp_exchange(g.port, query("two.test"), 2)
        assert.same({ "one", "two" }, { two[1].data, two[2].data })
        assert.equal(0, #udp_exchange(g.port, query("none.test"), 1, 300))
        assert.equal(0, #udp_exchange(g.port, query("boom.test"), 1, 300))
        local b = g.queries("boom.test")[1]
        assert.truthy(b.error:find("boom", 1, true))
        assert.equal("raw+error", b.action)
      end)
      g.stop()
      os.remove(path)
      assert(ok, err)
    end)
  end)

  describe("other knobs", function()
    it("sets the opcode, clears AA and changes the question class on request", function()
      local m = parse(udp_ask(f.port, query("knobs.test", "A")))
      assert.equal(2, m.opcode)
      assert.is_false(m.aa)
      assert.equal(3, m.questions[1].class)
      assert.equal("192.0.2.1", m.answers[1].address)
    end)

    it("serves IPv4-mapped AAAA and NS records", function()
      local m = parse(udp_ask(f.port, query("mapped.test", "AAAA")))
      assert.equal(wire.ipv6("::ffff:192.0.2.1"), m.answers[1].rdata)
      assert.equal("00000000000000000000ffffc0000201", wire.hex(m.answers[1].rdata))
      local r = kdig(f, "mapped.test", "NS")
      assert.equal(2, r.ancount)
      assert.equal("ns2.test.", r.answers[2].data)
    end)

    it("waits then_ok milliseconds before the right reply", function()
      local got = udp_exchange(f.port, query("gap.test", "A", 0x1234), 2)
      assert.equal(2, #got)
      assert.equal(0x1234, wire.get_u16(got[2].data, 1))
      assert.is_true(got[2].ms - got[1].ms >= 115, "gap " .. (got[2].ms - got[1].ms))
    end)

    it("applies a tcp override inside a type", function()
      assert.equal(0, parse(udp_ask(f.port, query("tcponly.test", "MX"))).rcode)
      assert.equal(5, parse(tcp_ask(f.port, query("tcponly.test", "MX"))).rcode)
      assert.equal(0, #tcp_exchange(f.port, { frame(query("tcponly.test", "A")) }, 1, 300))
    end)

    it("ignores packets that are not queries", function()
      local before = #f.log()
      assert.equal(0, #udp_exchange(f.port, { "\1\2\3\4\5",
        wire.header { id = 5151, qr = true, qdcount = 1 } .. wire.question("ok.test", "A") }, 1, 300))
      local log = f.log()
      assert.equal(before + 2, #log)
      assert.same({ "ignored", 5, "ignored", 5151 },
                  { log[before + 1].action, log[before + 1].bytes, log[before + 2].action,
                    log[before + 2].id })
    end)
  end)

  describe("TCP", function()
    it("answers several queries on one connection, split across reads", function()
      local q1 = frame(query("ok.test", "MX", 11))
      local q2 = frame(query("ok.test", "A", 12))
      local q3 = frame(query("sf.test", "A", 13))
      local stream = q1 .. q2 .. q3
      local frames = tcp_exchange(f.port, {
        { stream:sub(1, 1), 30 },              -- half of the length prefix
        { stream:sub(2, 9), 30 },              -- rest of the prefix and a bit
        { stream:sub(10, #q1 + 5), 30 },       -- end of q1 and the start of q2
        stream:sub(#q1 + 6),                   -- the rest
      }, 3)
      assert.equal(3, #frames)
      local ids = {}
      for i, fr in ipairs(frames) do ids[i] = parse(fr.data).id end
      assert.same({ 11, 12, 13 }, ids)
      assert.equal(2, parse(frames[1].data).ancount)
      assert.equal(2, parse(frames[3].data).rcode)
    end)

    it("answers malformed queries with FORMERR", function()
      local bad = wire.header { id = 99, qdcount = 1 } .. "\5abc"
      local h = wire.parse_header(udp_ask(f.port, bad))
      assert.equal(99, h.id)
      assert.equal(1, h.rcode)
      assert.is_true(h.qr)
    end)
  end)

  describe("the log", function()
    it("records every query with time, protocol, id, name, type and action", function()
      local before = #f.log()
      udp_ask(f.port, query("OK.test", "MX", 3001))
      tcp_ask(f.port, query("sf.test", "AAAA", 3002))
      udp_ask(f.port, wire.query { id = 3003, name = "ok.test", type = 99 })
      local log = f.log()
      local new = {}
      for i = before + 1, #log do new[#new + 1] = log[i] end
      assert.equal(6, #new)
      assert.same({ "udp", 3001, "OK.test", "MX", "answer" },
                  { new[1].proto, new[1].id, new[1].name, new[1].type, new[1].action })
      assert.same({ "reply", "udp", 3001, "OK.test", "MX" },
                  { new[2].event, new[2].proto, new[2].id, new[2].name, new[2].type })
      assert.same({ "tcp", 3002, "sf.test", "AAAA", "rcode", 2 },
                  { new[3].proto, new[3].id, new[3].name, new[3].type, new[3].action, new[3].rcode })
      assert.equal("reply", new[4].event)
      assert.equal(99, new[5].type)
      for i = 2, #new do assert.is_true(new[i].t >= new[i - 1].t) end
      assert.is_true(new[1].t > 0)
    end)

    it("shows every query received before any delayed reply is sent", function()
      local got = udp_exchange(f.port, {
        query("slowsf.test", "A", 2001), query("slowsf.test", "AAAA", 2002),
      }, 2)
      assert.equal(2, #got)
      local first_reply, last_query
      for i, e in ipairs(f.log()) do
        if e.id == 2001 or e.id == 2002 then
          if e.event == "reply" then first_reply = first_reply or i
          elseif e.event == nil then last_query = i end
        end
      end
      assert.truthy(first_reply and last_query)
      assert.is_true(last_query < first_reply)
      local qs = f.queries { name = "slowsf.test", type = "AAAA" }
      assert.equal("rcode+delay", qs[#qs].action)
      assert.equal(150, qs[#qs].delay)
    end)

    it("filters queries by name, table or function", function()
      assert.is_true(#f.queries("OK.TEST.") >= 1)
      assert.equal(#f.queries { name = "ok.test", proto = "tcp" },
                   #f.queries(function(e) return e.name:lower() == "ok.test" and e.proto == "tcp" end))
      assert.equal(0, #f.queries("never-asked.test"))
      assert.truthy(f.wait("ok.test", 1, 0.1))
      assert.is_nil(f.wait("never-asked.test", 1, 0.05))
    end)
  end)
end)

describe("fault.start and stop", function()
  it("stops the process and frees the port, idempotently", function()
    local g = fault.start { ["ok.test"] = { A = "192.0.2.1" } }
    local pid, port = g.pid, g.port
    assert.is_true(g.running())
    assert.equal(0, parse(udp_ask(port, query("ok.test"))).rcode)
    g.stop()
    assert.is_true(proc_gone(pid))
    assert.is_false(g.running())
    assert.same({ 0, 0 }, { g.exit_status() }) -- a clean exit on SIGTERM, not SIGKILL
    assert.equal(0, #udp_exchange(port, query("ok.test"), 1, 300))
    g.stop()
    assert.equal(1, #g.queries("ok.test")) -- the log outlives the process
  end)

  it("stops every server with stop_all", function()
    local a, b = fault.start {}, fault.start {}
    fault.stop_all()
    assert.is_true(proc_gone(a.pid))
    assert.is_true(proc_gone(b.pid))
  end)

  it("serializes rule tables and refuses functions in them", function()
    local src = fault.serialize { ["a.test"] = { MX = { { 10, "m.test" } }, delay = 1.5, drop = false } }
    assert.same({ ["a.test"] = { MX = { { 10, "m.test" } }, delay = 1.5, drop = false } },
                assert((loadstring or load)(src))())
    local ok, err = pcall(fault.start, { ["raw.test"] = { raw = function() end } })
    assert.is_false(ok)
    assert.truthy(err:find("path", 1, true))
  end)

  it("reports rules the server rejects, leaving nothing running", function()
    local ok, err = pcall(fault.start, { ["x.test"] = { dorp = true } })
    assert.is_false(ok)
    assert.truthy(err:find("unknown key 'dorp'", 1, true))
    ok, err = pcall(fault.start, { ["x.test"] = { A = "300.1.1.1" } })
    assert.is_false(ok)
    assert.truthy(err:find("bad A address", 1, true))
    ok, err = pcall(fault.start, { ["x.test"] = { rcode = 16 } })
    assert.is_false(ok)
    assert.truthy(err:find("rcode", 1, true))
  end)

  it("listens on a requested port", function()
    local g = fault.start { ["ok.test"] = { A = "192.0.2.1" } }
    local port = g.port
    g.stop()
    local h = fault.start({ ["ok.test"] = { A = "192.0.2.4" } }, { port = port })
    local ok, err = pcall(function()
      assert.equal(port, h.port)
      assert.equal("127.0.0.1:" .. port, h.addr)
      assert.equal("192.0.2.4", parse(tcp_ask(port, query("ok.test"))).answers[1].address)
    end)
    h.stop()
    assert(ok, err)
  end)

  it("exits by itself after max_seconds", function()
    local g = fault.start({}, { max_seconds = 0.5 })
    local pid = g.pid
    assert.is_true(wait_gone(pid, 3))
    g.stop()
  end)

  it("stops a server whose object is collected", function()
    local function start_and_forget()
      return fault.start({}).pid
    end
    local pid = start_and_forget()
    for _ = 1, 3 do collectgarbage() end
    assert.is_true(wait_gone(pid, 5))
    fault.stop_all() -- reaps it
    assert.is_nil(io.open("/proc/" .. pid .. "/stat"))
  end)

  -- A child interpreter with MXR_TEST_TMP set starts a server and leaves
  -- without closing its state (no finalizers run).
  it("records its pid under MXR_TEST_TMP and dies with its parent", function()
    local dir = util.make_dir("fault-spec")
    local script = [[
      local fault = require "support.fault"
      local f = fault.start { ["ok.test"] = { A = "192.0.2.1" } }
      local fh = io.open(os.getenv("MXR_TEST_TMP") .. "/pids/" .. f.pid)
      io.write(f.pid, " ", fh and fh:read("*l") or "none", " ", f.dir, "\n")
      io.flush()
      os.exit(0, false)
    ]]
    local cmd = "MXR_TEST_TMP=" .. shell_quote(dir) .. " " .. fault.interpreter()
        .. " -e " .. shell_quote(script)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    local pid, recorded, sdir = out:match("^(%d+) (%S+) (%S+)")
    assert.truthy(pid, out)
    assert.equal(pid, recorded)
    assert.equal(dir, sdir:sub(1, #dir))
    assert.is_true(wait_gone(tonumber(pid), 3))
    util.remove_dir(dir)
  end)
end)
