-- The exchange (DESIGN 9) through mxroute.ngx: the failover and health
-- cases the C engine meets (support/exchange_cases.lua, as in
-- spec/exchange_spec.lua) run through nginx, UDP socket rotation on
-- cosockets, and core.xch, the binding mxroute.ngx drives: what it asks
-- of a transport, misuse errors, and its lifetime under valgrind. The
-- nginx part only speaks HTTP, so the spec runs under Lua 5.4 and LuaJIT.
local cjson = require "cjson"
local core = require "mxroute.core"
local dnswire = require "support.dnswire"
local fault = require "support.fault"
local fault_cases = require "support.fault_cases"
local knot = require "support.knot"
local nginx = require "support.nginx"
local plans = require "support.plans"
local util = require "support.util"
local xcases = require "support.exchange_cases"
local async_cases = require "support.async_cases"

-- The test application, loaded inside nginx as module "xtest".
local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"

local M = {}

local function list(s)
  local t = {}
  for x in (s or ""):gmatch("[^,]+") do t[#t + 1] = x end
  return t
end

-- GET /all?ns=a,b&timeout=&tries=&health=&udp_queries=&to=x&n=N: N plans
-- of x in a row on ONE resolver (one exchange: server health is its
-- memory), then its counters.
function M.all()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver {
    nameservers = list(args.ns), timeout = tonumber(args.timeout),
    tries = tonumber(args.tries), health = tonumber(args.health),
    udp_queries = tonumber(args.udp_queries), dns0x20 = args.dns0x20 == "true" or nil,
    cache = false, -- every plan goes to the servers: the exchange is measured
  }
  local out, before = {}, r:stats()
  for i = 1, tonumber(args.n) or 1 do
    local p, message, code = r:resolve(args.to)
    out[i] = { plan = p or false, message = message or false, code = code or false }
  end
  local stats = r:stats()
  r:close()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode { results = out, stats = stats, before = before })
end

-- GET /load?ns=&n=N&max_inflight=: N plans at once on ONE resolver, a
-- light thread each; the codes of those that failed and the counters.
function M.load()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver {
    nameservers = list(args.ns), timeout = 3, tries = 2,
    max_inflight = tonumber(args.max_inflight), cache = false,
  }
  local threads, bad = {}, {}
  ngx.update_time()
  local t0 = ngx.now()
  for i = 1, tonumber(args.n) do
    threads[i] = ngx.thread.spawn(function()
      local p, _, code = r:resolve(("d%d.load.test"):format(i))
      if not p or p.hosts[1].name ~= "mx.load.test" then return code or "wrong plan" end
    end)
  end
  for i = 1, #threads do
    local ok, code = ngx.thread.wait(threads[i])
    if not ok or code then bad[#bad + 1] = tostring(code) end
  end
  ngx.update_time()
  local stats = r:stats()
  r:close()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode { bad = bad, stats = stats, seconds = ngx.now() - t0 })
end

return M
]==]

local SERVER_CONF = [[
        location = /all { content_by_lua_block { require("xtest").all() } }
        location = /load { content_by_lua_block { require("xtest").load() } }
]]

describe("the exchange through mxroute.ngx in nginx", function()
  local k, srv

  setup(function()
    k = knot.shared()
    srv = nginx.start {
      http = "lua_socket_log_errors off;", server = SERVER_CONF, files = { ["xtest.lua"] = APP },
    }
  end)

  teardown(function()
    if srv then srv.stop() end
  end)

  -- resolve_all(opts, inputs) of support/exchange_cases.lua, over HTTP:
  -- the inputs (all alike) in a row on one resolver.
  local function all(opts, inputs)
    local res = srv.get(nginx.path("/all", {
      ns = opts.nameservers, timeout = opts.timeout, tries = opts.tries,
      health = opts.health, udp_queries = opts.udp_queries, to = inputs[1], n = #inputs,
      dns0x20 = opts.dns0x20 and "true" or nil,
    }), 60)
    assert.equal(200, res.status, res.body)
    local out = cjson.decode(res.body)
    local list = {}
    for i, r in ipairs(out.results) do
      list[i] = { r.plan or nil, r.message or nil, r.code or nil }
    end
    return list, out.stats, out.before
  end

  local function resolve(opts, input)
    local r = all(opts, { input })[1]
    return r[1], r[2], r[3]
  end

  for _, c in ipairs(xcases.FAULTS) do
    it("takes the plan from the second nameserver when the first gives " .. c.name, function()
      xcases.failover(c, resolve, k.addr)
    end)
  end

  it("asks a silent first nameserver once for 20 plans in a row (server health)", function()
    xcases.health(all, k.addr)
  end)

  it("sends at most udp_queries queries from one source port, then a fresh one", function()
    local f = fault.start(fault_cases.rules())
    local inputs = {}
    for i = 1, 10 do inputs[i] = "user@ok.test" end
    local results, stats, before = all({ nameservers = { f.addr }, udp_queries = 2 }, inputs)
    -- r:stats() counts from 0 (before the first resolution: all 0)
    assert.same({ 0, 0, { 0 } }, { before.queries, before.sockets, before.server_failures })
    local queries = f.queries()
    f.stop()
    for _, r in ipairs(results) do assert.same({ "mx.ok.test" }, plans.names_of(r[1])) end
    -- 10 plans of 3 queries (MX, A, AAAA), one after the other
    assert.equal(30, #queries)
    assert.equal(30, stats.queries)
    -- The queries go out one after the other, so one socket's queries
    -- arrive in a row: count per run of one source port (a port the
    -- kernel hands out again later belongs to another socket).
    local runs, last, n = 0, nil, 0
    for _, q in ipairs(queries) do
      assert.is_number(q.sport)
      if q.sport ~= last then runs, last, n = runs + 1, q.sport, 0 end
      n = n + 1
      assert.is_true(n <= 2, "port " .. q.sport .. " carried " .. n .. " in a row")
    end
    assert.is_true(runs >= 15, runs .. " sockets")
  end)

  it("asks with a random case (DNS 0x20) when dns0x20 is on, and takes the echoed answer", function()
    local f = fault.start {
      ["x20.test"] = { MX = { { 10, "mail.x20.test" } } },
      ["mail.x20.test"] = { A = "192.0.2.99" },
    }
    local p, msg, code = resolve({ nameservers = { f.addr }, dns0x20 = true }, "user@x20.test")
    local names = {}
    for _, q in ipairs(f.queries()) do names[#names + 1] = q.name end
    f.stop()
    assert(p, tostring(msg or code))
    assert.same({ "mail.x20.test" }, plans.names_of(p))
    local mixed = false
    for _, n in ipairs(names) do if n ~= n:lower() then mixed = true end end
    assert.is_true(mixed, table.concat(names, " "))
  end)

  it("completes 5,000 plans started at once in one request against a server answering after 100 ms", function()
    local f = fault.start {
      default = { rcode = "NOERROR", delay = 100, MX = { { 10, "mx.load.test" } } },
      ["mx.load.test"] = { A = "192.0.2.7", delay = 100 },
    }
    local res = srv.get(nginx.path("/load", { ns = f.addr, n = 5000, max_inflight = 500 }), 120)
    f.stop()
    assert.equal(200, res.status, res.body)
    local out = cjson.decode(res.body)
    assert.same({}, out.bad)
    assert.equal(0, out.stats.timeouts)
    assert.is_true(out.stats.merged > 0)
  end)

  it("logs no Lua error", function()
    local log = srv.error_log()
    for _, bad in ipairs { "[alert]", "[crit]", "[emerg]", "runtime error", "thread aborted" } do
      local at = log:find(bad, 1, true)
      assert.falsy(at, "error log: " .. log:sub(at or 1, (at or 1) + 300))
    end
  end)
end)

describe("core.xch, the exchange mxroute.ngx drives", function()
  local opts = core.opts {}

  local function query(input) return core.res(input or "user@backup.mx.test", opts) end

  -- Every operation the exchange asks for now.
  local function ops(x)
    local out = {}
    while true do
      local op, sock, server, data = x:io()
      if not op then return out end
      out[#out + 1] = { op = op, sock = sock, server = server, data = data }
    end
  end

  -- A reply to query message `q` (NOERROR, one MX record).
  local function reply(q)
    local h = dnswire.parse_header(q)
    local qname_end = 13
    while q:byte(qname_end) ~= 0 do qname_end = qname_end + q:byte(qname_end) + 1 end
    local question = q:sub(13, qname_end + 4)
    return dnswire.header { id = h.id, qr = true, rd = true, ra = true, qdcount = 1, ancount = 1 }
      .. question .. dnswire.rr("backup.mx.test", "MX", 60, dnswire.rdata.MX(10, "mx1.backup.mx.test"))
  end

  it("asks for a UDP socket to the first nameserver, then sends the MX query on it", function()
    local x = core.xch { servers = { "192.0.2.1:53", "192.0.2.2" } }
    local q = query()
    x:add(q)
    assert.equal(1, x:pending())
    assert.equal(0, x:timeout())
    local list = ops(x)
    assert.equal(2, #list)
    assert.same({ "udp", 1 }, { list[1].op, list[1].server })
    assert.same({ "send", list[1].sock, 1 }, { list[2].op, list[2].sock, list[2].server })
    local h = dnswire.parse_header(list[2].data)
    assert.same({ false, 1 }, { h.qr, h.qdcount })
    assert.truthy(list[2].data:find("\6backup\2mx\4test\0\0\15", 13, true))
    assert.is_true(x:timeout() > 0)
    x:close()
  end)

  it("takes the reply to its query and drops anything else", function()
    local x = core.xch { servers = { "192.0.2.1:53" } }
    local q = query()
    x:add(q)
    local list = ops(x)
    local sock, msg = list[2].sock, list[2].data
    assert.is_false(x:recv(sock, "not DNS"))
    local other = reply(msg)
    other = other:sub(1, 1) .. string.char((other:byte(2) + 1) % 256) .. other:sub(3) -- another ID
    assert.is_false(x:recv(sock, other))
    assert.is_true(x:recv(sock, reply(msg)))
    local s = x:stats()
    assert.same({ 2, 1 }, { s.dropped, s.answers })
    -- the plan goes on: A and AAAA of the host
    local sends = 0
    for _, o in ipairs(ops(x)) do if o.op == "send" then sends = sends + 1 end end
    assert.equal(2, sends)
    x:close()
  end)

  it("moves every query of a failed socket to the next nameserver", function()
    local x = core.xch { servers = { "192.0.2.1:53", "192.0.2.2:53" } }
    x:add(query())
    local sock = ops(x)[1].sock
    x:sock_error(sock, "NETWORK")
    local list = ops(x)
    local servers = {}
    for _, o in ipairs(list) do servers[#servers + 1] = o.op .. o.server end
    assert.same({ "close1", "udp2", "send2" }, servers)
    assert.same({ 1, 0 }, x:stats().server_failures)
    x:close()
  end)

  it("hands a finished query back once, detached", function()
    local x = core.xch { servers = { "192.0.2.1:53" } }
    local q = query()
    x:add(q)
    x:cancel(q)
    assert.equal(q, x:next_done())
    assert.is_nil(x:next_done())
    assert.equal(0, x:pending())
    assert.equal("CANCELLED", select(3, q:result()))
    assert.has_error(function() x:cancel(q) end, "mxroute: query is not attached to this exchange")
    x:close()
  end)

  it("cancels what is attached when closed, and a query's cancel goes through it", function()
    local x = core.xch { servers = { "192.0.2.1:53" } }
    local q1, q2 = query(), query("other.test")
    x:add(q1)
    x:add(q2)
    q2:cancel() -- through the exchange: reported done like any other
    assert.equal(q2, x:next_done())
    x:close()
    assert.is_true(q1:done())
    assert.equal("CANCELLED", select(3, q1:result()))
    assert.has_error(function() x:io() end, "mxroute: exchange is closed")
    x:close() -- idempotent
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.xch {} end,
                     "mxroute.xch: 'servers' must be a list of 1 to 64 nameservers")
    assert.has_error(function() core.xch { servers = { "192.0.2.1", "0.0.0.0" } } end)
    local ok, err = pcall(core.xch, { servers = { "192.0.2.1", "224.0.0.1" } })
    assert.is_false(ok)
    assert.truthy(err:find("servers[2]", 1, true), err)
    assert.has_error(function() core.xch { servers = { "192.0.2.1" }, tries = 0 } end,
                     "mxroute.xch: 'tries' out of range")
    local x = core.xch { servers = { "192.0.2.1:53" } }
    local q = query()
    x:add(q)
    assert.has_error(function() x:add(q) end, "mxroute: query already submitted")
    -- its queries are the exchange's to ask
    assert.has_error(function() q:next() end, "mxroute: query is driven by an engine")
    assert.has_error(function() q:fail(1, "TIMEOUT") end, "mxroute: query is driven by an engine")
    assert.has_error(function() x:sock_error(0, "SERVFAIL") end)
    local e = core.engine { servers = "192.0.2.1:53" }
    assert.has_error(function() e:submit(q) end, "mxroute: query already submitted")
    e:close()
    x:close()
  end)

  it("finds no leak or invalid access when queries and exchanges are dropped in any order (valgrind)", function()
    local script = [[
      local core = require "mxroute.core"
      local opts = core.opts {}
      local function collect() for _ = 1, 4 do collectgarbage("collect") end end
      local function fresh()
        local x = core.xch { servers = { "192.0.2.1:53", "192.0.2.2:53" } }
        local q = core.res("user@backup.mx.test", opts)
        x:add(q)
        while x:io() do end
        return x, q
      end
      -- query dropped while attached: the exchange keeps it
      local x, q = fresh()
      q = nil -- luacheck: ignore
      collect()
      assert(x:pending() == 1)
      -- both dropped together (either finalizer may run first)
      x, q = nil, nil -- luacheck: ignore
      collect()
      for _ = 1, 20 do fresh() end
      collect()
      -- a query outliving its closed exchange, then collected
      x, q = fresh()
      x:close()
      x = nil -- luacheck: ignore
      collect()
      assert(q:done())
      q = nil -- luacheck: ignore
      collect()
      -- removed, next_done, closed with queries, left at exit
      x, q = fresh()
      x:remove(q)
      local q2 = core.res("other.test", opts)
      x:add(q2)
      q2:cancel()
      assert(x:next_done() == q2)
      x:add(core.res("third.test", opts))
      x:close()
      fresh()
      fresh()
      print("script done")
    ]]
    local out, status = async_cases.run_script(script, function(file)
      return ("valgrind -q --leak-check=full --error-exitcode=99 "
        .. "--errors-for-leak-kinds=definite,indirect,possible %s %s"):format(util.interpreter(), file)
    end)
    assert.truthy(out:find("script done", 1, true), out)
    assert.equal(0, status, out)
    assert.is_nil(out:find("==%d+==", 1), out)
  end)

  it("keeps an attached query alive when nothing else holds it", function()
    local x = core.xch { servers = { "192.0.2.1:53" } }
    local weak = setmetatable({}, { __mode = "v" })
    do
      local q = query()
      x:add(q)
      weak[1] = q
    end
    for _ = 1, 4 do collectgarbage("collect") end
    assert.is_not_nil(weak[1])
    x:close()
    for _ = 1, 4 do collectgarbage("collect") end
    assert.is_nil(weak[1])
  end)
end)
