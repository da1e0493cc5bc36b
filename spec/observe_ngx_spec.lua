-- Observability and the in-flight merge through mxroute.ngx in nginx, as
-- spec/observe_spec.lua and spec/merge_spec.lua prove them for the C
-- engine: r:stats() (queries, answers, timeouts, per-server failures,
-- plans by class), on_query called from the waiting thread's step (never
-- from a reader thread), and 50 simultaneous plans for one domain sharing
-- one MX, one A and one AAAA query, cache on and off, also when one of
-- them is closed early. The nginx part only speaks HTTP, so the spec
-- runs under Lua 5.4 and LuaJIT.
local cjson = require "cjson"
local fault = require "support.fault"
local nginx = require "support.nginx"

-- The test application, loaded inside nginx as module "otest".
local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"

local M = {}

local function list(s)
  local t = {}
  for x in (s or ""):gmatch("[^,]+") do t[#t + 1] = x end
  return t
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

-- GET /seq?ns=a,b&to=x,y&timeout=&tries=&self=&fail=NAME: each input in
-- turn on ONE resolver with on_query (raising for the events of NAME);
-- the codes (or the error), the events, whether each event came in this
-- request's own thread, and the counters.
function M.seq()
  local args = ngx.req.get_uri_args()
  local events, main = {}, coroutine.running()
  local r = mxngx.resolver {
    nameservers = list(args.ns), timeout = tonumber(args.timeout),
    tries = tonumber(args.tries), cache = args.cache == "on",
    self = args.self and list(args.self) or nil,
    on_query = function(ev)
      ev.own_thread = coroutine.running() == main
      events[#events + 1] = ev
      if ev.name == args.fail then error("on_query failed for " .. ev.name) end
    end,
  }
  local out = {}
  for i, input in ipairs(list(args.to)) do
    local ok, p, message, code = pcall(r.resolve, r, input)
    out[i] = ok and (p and "OK" or code) or ("error: " .. tostring(p))
  end
  reply { codes = out, events = events, stats = r:stats(),
          cache_stats = r:cache_stats() }
  r:close()
end

-- GET /merge?ns=&n=N&cache=on|off&close=1: N plans of one domain at once
-- on ONE resolver, a light thread each; with close=1 the first one is a
-- targets() iteration closed while the MX query is in flight.
function M.merge()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver { nameservers = list(args.ns), timeout = 2,
                             tries = 1, cache = args.cache == "on" }
  r:flush() -- the worker's cache outlives requests: start without the domain
  local threads, codes = {}, {}
  for i = 1, tonumber(args.n) do
    local input = "user" .. i .. "@merge.test"
    if i == 1 and args.close == "1" then
      threads[i] = ngx.thread.spawn(function()
        local _, st = r:targets(input)
        ngx.sleep(0.03) -- the MX answer is held back 100 ms
        st:close()
        return "CLOSED"
      end)
    else
      threads[i] = ngx.thread.spawn(function()
        local p, _, code = r:resolve(input)
        return p and #p.targets == 2 and "OK" or tostring(code)
      end)
    end
  end
  for i = 1, #threads do
    local ok, code = ngx.thread.wait(threads[i])
    codes[i] = ok and code or "thread error"
  end
  reply { codes = codes, stats = r:stats(), cache_stats = r:cache_stats() }
  r:close()
end

return M
]==]

local SERVER_CONF = [[
        location = /seq { content_by_lua_block { require("otest").seq() } }
        location = /merge { content_by_lua_block { require("otest").merge() } }
]]

local RULES = {
  ["ok.test"] = { MX = { { 10, "mx.ok.test" } } },
  ["mx.ok.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
  ["sf.test"] = { rcode = "SERVFAIL" },
  ["silent.test"] = { drop = true },
  ["big.test"] = { MX = { { 10, "mx.ok.test" } }, tc = true },
  ["self.test"] = { MX = { { 10, "me.ok.test" } } },
  ["me.ok.test"] = { A = "192.0.2.9" },
  ["merge.test"] = { MX = { { 10, "mx.merge.test" } }, delay = 100 },
  ["mx.merge.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
}

describe("observability through mxroute.ngx in nginx", function()
  local f, dead, srv

  setup(function()
    f = fault.start(RULES)
    dead = fault.start { default = "drop" }
    srv = nginx.start {
      http = "lua_socket_log_errors off;", server = SERVER_CONF,
      files = { ["otest.lua"] = APP },
    }
  end)

  teardown(function()
    if srv then srv.stop() end
    if f then f.stop() end
    if dead then dead.stop() end
  end)

  local function seq(args)
    local res = srv.get(nginx.path("/seq", args), 30)
    assert.equal(200, res.status, res.body)
    return cjson.decode(res.body)
  end

  it("r:stats() counts queries, answers, timeouts, server failures and plans by class", function()
    local from = #f.queries()
    local out = seq { ns = f.addr, timeout = 0.2, tries = 2, self = "192.0.2.9",
                      to = "ok.test,nx.test,sf.test,silent.test,bad..test,self.test,[192.0.2.7]" }
    assert.same({ "OK", "NXDOMAIN", "SERVFAIL", "TIMEOUT", "BADNAME", "LOOP", "OK" },
                out.codes)
    local s = out.stats
    assert.equal(#f.queries() - from, s.queries)
    assert.equal(3 + 1 + 2 + 2 + 3, s.queries)
    assert.equal(3 + 1 + 3, s.answers)
    assert.equal(2, s.timeouts)
    assert.same({ 4 }, s.server_failures)
    assert.same({ ok = 2, permanent = 1, temporary = 2, loop = 1, invalid = 1 },
                s.plans)
  end)

  it("r:stats() counts failures per nameserver in order", function()
    local out = seq { ns = dead.addr .. "," .. f.addr, timeout = 0.2, tries = 1,
                      to = "ok.test" }
    assert.same({ "OK" }, out.codes)
    assert.is_true(out.stats.server_failures[1] >= 1)
    assert.equal(0, out.stats.server_failures[2])
    assert.same({ ok = 1, permanent = 0, temporary = 0, loop = 0, invalid = 0 },
                out.stats.plans)
  end)

  it("on_query gets one event per finished try, in the waiting thread, matching the server's log", function()
    local from = #f.queries()
    local out = seq { ns = f.addr, timeout = 0.2, tries = 2,
                      to = "ok.test,nx.test,sf.test,silent.test,big.test" }
    assert.equal(#f.queries() - from, #out.events)
    assert.equal(out.stats.queries, #out.events)
    local seen = {}
    for _, ev in ipairs(out.events) do
      assert.is_true(ev.own_thread, "on_query ran in another thread")
      assert.equal(f.addr, ev.server)
      assert.is_true(ev.rtt >= 0)
      seen[#seen + 1] = table.concat({ ev.name, ev.type, ev.tcp and "tcp" or "udp",
                                       ev.status, tostring(ev.rcode) }, " ")
    end
    table.sort(seen)
    assert.same({
      "big.test MX tcp OK NOERROR",
      "big.test MX udp OK NOERROR",
      "mx.ok.test A udp OK NOERROR",   -- ok.test
      "mx.ok.test A udp OK NOERROR",   -- big.test (cache off)
      "mx.ok.test AAAA udp OK NOERROR",
      "mx.ok.test AAAA udp OK NOERROR",
      "nx.test MX udp OK NXDOMAIN",
      "ok.test MX udp OK NOERROR",
      "sf.test MX udp SERVFAIL SERVFAIL",
      "sf.test MX udp SERVFAIL SERVFAIL",
      "silent.test MX udp TIMEOUT nil",
      "silent.test MX udp TIMEOUT nil",
    }, seen)
  end)

  it("an error in on_query raises out of resolve; the resolver goes on", function()
    local out = seq { ns = f.addr, to = "nx.test,ok.test", fail = "nx.test" }
    assert.matches("^error: .*on_query failed for nx.test", out.codes[1])
    assert.equal("OK", out.codes[2])
  end)

  for _, cache in ipairs { "on", "off" } do
    it("50 simultaneous plans for one domain send one MX, one A, one AAAA query (cache " .. cache .. ")", function()
      local from = #f.log()
      local res = srv.get(nginx.path("/merge", { ns = f.addr, n = 50, cache = cache }), 30)
      assert.equal(200, res.status, res.body)
      local out = cjson.decode(res.body)
      for i = 1, 50 do assert.equal("OK", out.codes[i]) end
      assert.equal(1, f.count("merge.test", "MX", from))
      assert.equal(1, f.count("mx.merge.test", "A", from))
      assert.equal(1, f.count("mx.merge.test", "AAAA", from))
      assert.equal(3, out.stats.queries)
      assert.equal(3 * 49, out.stats.merged)
      assert.equal(3 * 49, out.cache_stats.merged)
      assert.equal(50, out.stats.plans.ok)
    end)

    it("closing the plan that started the query does not cancel it for the others (cache " .. cache .. ")", function()
      local from = #f.log()
      local res = srv.get(nginx.path("/merge", { ns = f.addr, n = 50, cache = cache,
                                                 close = 1 }), 30)
      assert.equal(200, res.status, res.body)
      local out = cjson.decode(res.body)
      assert.equal("CLOSED", out.codes[1])
      for i = 2, 50 do assert.equal("OK", out.codes[i]) end
      assert.equal(1, f.count("merge.test", "MX", from))
      assert.equal(1, f.count("mx.merge.test", "A", from))
      assert.equal(1, f.count("mx.merge.test", "AAAA", from))
      assert.equal(0, out.stats.timeouts)
      assert.equal(49, out.stats.plans.ok)
    end)
  end

  it("logs no Lua error", function()
    local log = srv.error_log()
    for _, bad in ipairs { "[alert]", "[crit]", "[emerg]", "runtime error", "thread aborted" } do
      local at = log:find(bad, 1, true)
      assert.falsy(at, "error log: " .. log:sub(at or 1, (at or 1) + 300))
    end
  end)
end)
