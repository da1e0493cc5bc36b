-- mxroute.ngx inside nginx (Debian's nginx with ngx_lua on LuaJIT, one
-- worker process), driven over HTTP: the same results as the core
-- resolver against Knot and against every fault of the fault server,
-- cosocket I/O that never blocks the worker (parallel A/AAAA, TCP after
-- TC, one resolver shared by light threads), clear errors in phases
-- without cosockets, and the example configuration of examples/nginx/.
-- The spec itself only speaks HTTP, so it runs under Lua 5.4 and LuaJIT.
local uv = require "luv"
local cjson = require "cjson"
local knot = require "support.knot"
local fault = require "support.fault"
local cases = require "support.fault_cases"
local nginx = require "support.nginx"
local plans = require "support.plans"
local util = require "support.util"
local mxroute = require "mxroute"

-- The test application, loaded inside nginx as module "mxtest".
local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"
local semaphore = require "ngx.semaphore"

local M = {}

local function list(s)
  if type(s) ~= "string" or s == "" then return nil end
  local t = {}
  for x in s:gmatch("[^,]+") do t[#t + 1] = x end
  return t
end

-- resolver options from the query string
local function opts(args)
  local o = { nameservers = list(args.ns) }
  o.timeout = tonumber(args.timeout)
  o.tries = tonumber(args.tries)
  o.seed = tonumber(args.seed)
  o.self = list(args.self)
  o.family = args.family
  o.prefer = args.prefer
  o.max_hosts = tonumber(args.max_hosts)
  if args.ignore == "none" then o.ignore_targets = {} end
  -- these specs count queries and make servers fail: no cache (the
  -- worker's cache is proven in cache_ngx_spec.lua)
  o.cache = false
  return o
end

local function outcome(plan, message, code, info)
  if plan then return { ok = true, plan = plan } end
  return { ok = false, message = message, code = code,
           class = code and mxngx.class(code), info = info }
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

local function elapsed(t0)
  ngx.update_time()
  return ngx.now() - t0
end

function M.resolve()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  local t0 = ngx.now()
  local out = outcome(r:resolve(args.to))
  r:close()
  out.elapsed = elapsed(t0)
  reply(out)
end

-- several resolutions at once, one light thread each, on ONE resolver
function M.parallel()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  local threads, out = {}, {}
  for i, input in ipairs(list(args.to)) do
    threads[i] = ngx.thread.spawn(function() return outcome(r:resolve(input)) end)
  end
  for i, th in ipairs(threads) do
    local ok, res = ngx.thread.wait(th)
    out[i] = ok and res or { error = tostring(res) }
  end
  r:close()
  reply(out)
end

function M.targets()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  local limit = tonumber(args.limit)
  local got = {}
  local iter, st = r:targets(args.to)
  local last
  while true do
    last = { iter(st) }
    local t = last[1]
    if t == nil then break end
    got[#got + 1] = t
    if limit and #got >= limit then
      st:close()
      break
    end
  end
  r:close()
  reply { targets = got, code = st.code, message = st.message,
          plan = st.plan ~= nil, finished = st.finished, closed = st.closed,
          info_code = st.info and st.info.code, last_message = last[2],
          last_code = last[3] }
end

-- light threads busy between two targets (as with an SMTP attempt) and
-- one that resolves, on ONE resolver: the order things happened in
function M.busy()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  local events, threads = {}, {}
  for i = 1, 5 do
    threads[i] = ngx.thread.spawn(function()
      local iter, st = r:targets("early.test")
      iter(st)
      ngx.sleep(0.8) -- b.early.test answers at 1 s: its query is still on
      events[#events + 1] = "slept"
      st:close()
    end)
  end
  threads[6] = ngx.thread.spawn(function()
    ngx.sleep(0.1) -- the others are busy by now
    local p = r:resolve("ok.test") -- not in the assignment: its index would be taken first
    events[#events + 1] = p and "resolved" or "failed"
  end)
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  r:close()
  reply(events)
end

-- close the resolver while another light thread waits on it
function M.close()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  local t0 = ngx.now()
  local th = ngx.thread.spawn(function() return outcome(r:resolve(args.to)) end)
  ngx.sleep(tonumber(args.after) or 0.1)
  r:close()
  local ok, res = ngx.thread.wait(th)
  if not ok then res = { error = tostring(res) } end
  res.elapsed = elapsed(t0)
  local _, err = pcall(r.resolve, r, args.to)
  res.after_close = tostring(err)
  reply(res)
end

function M.timer()
  local args = ngx.req.get_uri_args()
  local sema = semaphore.new(0)
  local out
  local ok, err = ngx.timer.at(0, function()
    local r = mxngx.resolver(opts(args))
    out = outcome(r:resolve(args.to))
    out.phase = ngx.get_phase()
    r:close()
    sema:post(1)
  end)
  if not ok then return reply { error = err } end
  sema:wait(10)
  reply(out or { error = "no result from the timer" })
end

function M.access()
  local args = ngx.req.get_uri_args()
  local r = mxngx.resolver(opts(args))
  ngx.ctx.out = outcome(r:resolve(args.to))
  ngx.ctx.out.phase = ngx.get_phase()
  r:close()
end

function M.show() reply(ngx.ctx.out or { error = "nothing resolved" }) end

-- the error of a resolution in the current phase (no nameserver listens
-- on port 9: nothing may be sent anyway)
function M.try_resolve()
  local ok, err = pcall(function()
    local r = mxngx.resolver { nameservers = { "127.0.0.1:9" } }
    return r:resolve("example.test")
  end)
  return ok and "no error" or tostring(err)
end

-- the resolver made in init_by_lua, shared by every request
function M.shared()
  local r = package.loaded.mxtest_shared
  reply(outcome(r:resolve(ngx.req.get_uri_args().to)))
end

function M.init()
  reply { init = package.loaded.mxtest_init, init_worker = package.loaded.mxtest_init_worker }
end

function M.badopts()
  local out = {}
  local function try(f, ...)
    local ok, err = pcall(f, ...)
    out[#out + 1] = ok and "no error" or tostring(err)
  end
  for _, o in ipairs {
    { family = "ipx" }, { wait = "yield" }, { nameservers = { "nonsense" } },
    { timeout = -1 }, { tries = 0 }, { bogus = 1 }, { seed = "x" },
    { nameservers = {} }, { self = { "not a name!" } }, { nameservers = false },
    { nameservers = { "0.0.0.0" } }, { max_inflight = 0 }, { dns0x20 = "yes" },
  } do
    try(mxngx.resolver, o)
  end
  local r = mxngx.resolver { nameservers = { "127.0.0.1:9" } }
  try(r.resolve, r, 42)
  r:close()
  try(r.resolve, r, "example.test")
  try(r.targets, r, "example.test")
  reply(out)
end

function M.resolvconf()
  reply {
    mxngx.parse_resolv_conf("# resolv.conf\nsearch example.test\noptions ndots:2\n"
      .. "nameserver 192.0.2.53\n  nameserver 2001:db8::53 # v6\nnameserver fe80::1%eth0\n"
      .. "nameserver 198.51.100.53\nnameserver 203.0.113.53\n"),
    mxngx.parse_resolv_conf("search example.test\n"),
    mxngx.resolver({ nameservers = { "192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]:53",
                                     "2001:db8::2" } }):nameservers(),
  }
end

return M
]==]

local HTTP_CONF = [[
    lua_socket_log_errors off;
    init_by_lua_block {
        package.loaded.mxtest_init = require("mxtest").try_resolve()
        package.loaded.mxtest_shared = require("mxroute.ngx").resolver {
            nameservers = { "%s" }, timeout = 2,
        }
    }
    init_worker_by_lua_block { package.loaded.mxtest_init_worker = require("mxtest").try_resolve() }
]]

local SERVER_CONF = [[
        default_type text/plain;
        location = /resolve { content_by_lua_block { require("mxtest").resolve() } }
        location = /parallel { content_by_lua_block { require("mxtest").parallel() } }
        location = /targets { content_by_lua_block { require("mxtest").targets() } }
        location = /close { content_by_lua_block { require("mxtest").close() } }
        location = /busy { content_by_lua_block { require("mxtest").busy() } }
        location = /timer { content_by_lua_block { require("mxtest").timer() } }
        location = /access {
            access_by_lua_block { require("mxtest").access() }
            content_by_lua_block { require("mxtest").show() }
        }
        location = /set {
            set_by_lua_block $mxerr { return require("mxtest").try_resolve() }
            return 200 "$mxerr\n";
        }
        location = /header {
            header_filter_by_lua_block {
                ngx.header["X-Mxroute-Error"] = require("mxtest").try_resolve()
            }
            return 200 "ok\n";
        }
        location = /init { content_by_lua_block { require("mxtest").init() } }
        location = /shared { content_by_lua_block { require("mxtest").shared() } }
        location = /badopts { content_by_lua_block { require("mxtest").badopts() } }
        location = /resolvconf { content_by_lua_block { require("mxtest").resolvconf() } }
]]

-- Fault server rules: the faults the core resolver is checked against
-- (support/fault_cases.lua), and what only nginx needs.
local MX = cases.MX
local RULES = cases.rules {
  -- light threads of one request on one resolver
  ["lt1.test"] = { MX = MX, delay = 200 },
  ["lt2.test"] = { MX = MX, delay = 200 },
  ["lt3.test"] = { MX = MX, delay = 200 },
  -- requests sharing one resolver
  ["sh1.test"] = { MX = MX, delay = 200 },
  ["sh2.test"] = { MX = MX, delay = 200 },
  ["sh3.test"] = { MX = MX, delay = 200 },

  -- retries and the next nameserver
  ["rot.test"] = { MX = MX },
  ["rot2.test"] = { MX = MX },
  ["drop2.test"] = { types = { MX = { drop = true } } },

  -- never answered: the slow request of the non-blocking test
  ["hang.test"] = { drop = true },
  ["hang2.test"] = { drop = true },

  -- targets: the best host answers at once, the backup a second late
  ["early.test"] = { MX = { { 10, "a.early.test" }, { 20, "b.early.test" } } },
  ["a.early.test"] = { A = "192.0.2.31" },
  ["b.early.test"] = { A = "192.0.2.32", delay = 1000 },
}

local now, alive, dead_port = util.now, util.alive, util.dead_port
local sorted, names_of = plans.sorted, plans.names_of

-- Round trip through JSON, so that plans from the core and from nginx
-- compare alike.
local function norm(v) return cjson.decode(cjson.encode(v)) end

local function split(s)
  if not s then return nil end
  local t = {}
  for x in tostring(s):gmatch("[^,]+") do t[#t + 1] = x end
  return t
end

local function hosts_of(plan) return norm(plans.hosts_of(plan)) end

describe("mxroute.ngx in nginx", function()
  local k, f, srv

  setup(function()
    k = knot.shared()
    f = fault.start(RULES)
    srv = nginx.start {
      http = HTTP_CONF:format(f.addr), server = SERVER_CONF, files = { ["mxtest.lua"] = APP },
    }
  end)

  teardown(function()
    if srv then srv.stop() end
    if f then f.stop() end
  end)

  local function get_json(path, args)
    local res = srv.get(nginx.path(path, args))
    assert.equal(200, res.status, path .. ": " .. tostring(res.body))
    local ok, v = pcall(cjson.decode, res.body)
    assert(ok, path .. ": not JSON: " .. tostring(res.body))
    return v, res
  end

  -- Resolve through nginx; args: the query string (ns defaults to Knot).
  local function resolve(to, args)
    local a = { to = to, ns = k.addr }
    for key, v in pairs(args or {}) do a[key] = v end
    return get_json("/resolve", a)
  end

  -- The same with the core resolver (c-ares), in this process.
  local function core_resolve(to, args)
    args = args or {}
    local r = mxroute.resolver {
      nameservers = split(args.ns or k.addr), seed = args.seed, self = split(args.self),
      timeout = args.timeout, tries = args.tries,
    }
    local p, msg, code, info = r:resolve(to)
    r:close()
    if p then return norm { ok = true, plan = p } end
    return norm { ok = false, message = msg, code = code, class = mxroute.class(code), info = info }
  end

  local function without_elapsed(out)
    local c = {}
    for key, v in pairs(out) do if key ~= "elapsed" then c[key] = v end end
    return c
  end

  local function ok(to, args)
    local out = resolve(to, args)
    assert(out.ok, ("%s: expected a plan, got %s: %s"):format(to, tostring(out.code), tostring(out.message)))
    return out.plan, out
  end

  local function fails(code, class, to, args)
    local out = resolve(to, args)
    assert.is_false(out.ok, to .. ": expected a failure")
    assert.equal(code, out.code, to .. ": " .. tostring(out.message))
    assert.equal(class, out.class)
    assert.equal(class, mxroute.class(out.code))
    assert.is_true(type(out.message) == "string" and #out.message > 0)
    return out
  end

  describe("against Knot", function()
    -- the cases of the core specs, each also compared with the core
    -- resolver on the same seed: the same plan, field for field
    local CASES = {
      { "user@simple.mx.test", function(p)
        assert.same(norm { { name = "mx.simple.mx.test", pref = 10,
                             addrs = { "192.0.2.10", "2001:db8::10" } } }, hosts_of(p))
        assert.equal(2, #p.targets)
      end },
      { "backup.mx.test", function(p)
        assert.same(norm {
          { name = "mx1.backup.mx.test", pref = 10, addrs = { "192.0.2.11", "2001:db8::11" } },
          { name = "mx2.backup.mx.test", pref = 20, addrs = { "192.0.2.12" } },
        }, hosts_of(p))
        assert.same({ "mx1.backup.mx.test", "mx1.backup.mx.test", "mx2.backup.mx.test" },
                    { p.targets[1].host, p.targets[2].host, p.targets[3].host })
        assert.equal("192.0.2.12", p.targets[3].addr)
      end },
      { "pool.mx.test", function(p)
        assert.same({ "a.pool.mx.test", "b.pool.mx.test", "c.pool.mx.test" }, sorted(names_of(p)))
        for _, h in ipairs(p.hosts) do assert.equal(10, h.pref) end
      end },
      { "addr.nomx.test", function(p)
        assert.is_true(p.implicit)
        assert.same(norm { { name = "addr.nomx.test", pref = 0,
                             addrs = { "192.0.2.81", "2001:db8::81" } } }, hosts_of(p))
      end },
      { "alias.cname.test", function(p)
        assert.same({ "mx.target.cname.test" }, names_of(p))
      end },
      { "hostalias.cname.test", function(p)
        assert.same(norm { { name = "mxalias.hostalias.cname.test", pref = 10,
                             addrs = { "192.0.2.72", "2001:db8::72" } } }, hosts_of(p))
      end },
      { "v6only.mx.test", function(p)
        assert.same(norm { { host = "mx.v6only.mx.test", pref = 10, addr = "2001:db8::41",
                             family = "ipv6", port = 25 } }, norm(p.targets))
      end },
      { "Postmaster@MixedCase.MX.Test", function(p)
        assert.equal("mixedcase.mx.test", p.domain)
        assert.same({ "mx1.mixedcase.mx.test", "mx2.mixedcase.mx.test" }, names_of(p))
      end },
      { "dangling2.broken.test", function(p)
        assert.same({ "mx.dangling2.broken.test" }, names_of(p))
        assert.same(norm { { name = "gone.dangling2.broken.test", pref = 10, code = "NXDOMAIN" } },
                    norm(p.skipped))
      end },
      { "many.mx.test", function(p)
        -- 30 MX records do not fit a UDP reply: this plan came over TCP
        assert.equal(30, #p.hosts)
        for i, h in ipairs(p.hosts) do
          assert.equal(("mail-exchanger-host-number-%02d.many.mx.test"):format(i), h.name)
          assert.equal(i, h.pref)
          assert.same({ "198.51.100." .. i }, norm(h.addrs))
        end
      end },
      { "backup.self.test", function(p)
        assert.same({ "mx1.provider.self.test" }, names_of(p))
        assert.equal(20, p.self_pref)
      end, { self = "us.self.test" } },
    }
    for _, c in ipairs(CASES) do
      local input, check, extra = c[1], c[2], c[3]
      it("resolves " .. input .. " as the core resolver does", function()
        local args = { seed = 7 }
        for key, v in pairs(extra or {}) do args[key] = v end
        local p, out = ok(input, args)
        check(p)
        assert.same(core_resolve(input, args), without_elapsed(out))
      end)
    end

    local FAILURES = {
      { "txt.nomx.test", "NOHOSTS", "permanent" },   -- NODATA, no address
      { "nosuch.mx.test", "NXDOMAIN", "permanent" },
      { "null.nullmx.test", "NULLMX", "permanent" },
      { "dangling.broken.test", "NOHOSTS", "permanent" },
      { "best.self.test", "LOOP", "loop", { self = "us.self.test" } },
      { "refused.broken.test", "REFUSED", "temporary" },
    }
    for _, c in ipairs(FAILURES) do
      local input, code, class, extra = c[1], c[2], c[3], c[4]
      it("fails with " .. code .. " (" .. class .. ") for " .. input .. " as the core resolver does", function()
        local out = fails(code, class, input, extra)
        assert.same(core_resolve(input, extra), without_elapsed(out))
      end)
    end

    it("reports the skipped host of a dangling MX", function()
      local out = fails("NOHOSTS", "permanent", "dangling.broken.test")
      assert.same(norm { { name = "gone.dangling.broken.test", pref = 10, code = "NXDOMAIN" } },
                  out.info.skipped)
    end)

    it("draws equal preferences from the seed, in several orders across seeds", function()
      local orders = {}
      for seed = 1, 12 do
        orders[table.concat(names_of(ok("pool.mx.test", { seed = seed })), " ")] = true
      end
      local n = 0
      for _ in pairs(orders) do n = n + 1 end
      assert.is_true(n >= 2, "one order for 12 seeds")
    end)

    it("needs no query for an address literal and none for invalid input", function()
      local before = #f.queries()
      local p = ok("user@[192.0.2.99]", { ns = f.addr })
      assert.equal("192.0.2.99", p.targets[1].addr)
      for _, input in ipairs { "user@", "u@ok.test.", "bad name.test" } do
        fails("BADNAME", "invalid", input, { ns = f.addr })
      end
      uv.sleep(50)
      assert.equal(before, #f.queries())
    end)
  end)

  describe("against the fault server", function()
    local function fault_args(extra)
      local a = { ns = f.addr, timeout = 0.3, tries = 1 }
      for key, v in pairs(extra or {}) do a[key] = v end
      return a
    end

    -- name, code, class: the same as the core resolver's (one exchange:
    -- a reply shorter than a header, or with another ID or question, is
    -- not one and the wait goes on)
    local CASES = {
      { "servfail.test", "SERVFAIL", "temporary" },
      { "refused.test", "REFUSED", "temporary" },
      { "nxdomain.test", "NXDOMAIN", "permanent" },
      { "drop.test", "TIMEOUT", "temporary" },
      { "short.test", "TIMEOUT", "temporary" },
      { "short11.test", "TIMEOUT", "temporary" },
      { "empty.test", "TIMEOUT", "temporary" },
      { "truncated.test", "FORMERR", "temporary" },
      { "count.test", "FORMERR", "temporary" },
      { "nameloop.test", "FORMERR", "temporary" },
      { "rdlength.test", "FORMERR", "temporary" },
      { "wrongid.test", "TIMEOUT", "temporary" },
      { "qr0.test", "FORMERR", "temporary" },
      { "opcode.test", "FORMERR", "temporary" },
      { "rcode6.test", "FORMERR", "temporary" },
      { "rcode11.test", "FORMERR", "temporary" },
      { "rcode15.test", "FORMERR", "temporary" },
      { "wrongname.test", "TIMEOUT", "temporary" },
      { "wrongtype.test", "TIMEOUT", "temporary" },
      { "noquestion.test", "TIMEOUT", "temporary" },
      { "foreign.test", "FORMERR", "temporary" },
    }
    for _, c in ipairs(CASES) do
      local name, code, class = c[1], c[2], c[3]
      it("is " .. code .. " (" .. class .. ") for " .. name .. ", never data", function()
        local out = fails(code, class, "user@" .. name, fault_args())
        assert.truthy(out.message:find(name, 1, true), out.message)
        for _, e in ipairs(f.queries(name)) do assert.equal("MX", e.type) end
        local core = core_resolve("user@" .. name, fault_args())
        assert.equal(core.code, out.code)
        assert.equal(core.class, out.class)
      end)
    end

    it("times out after the configured timeout, with one try", function()
      local before = #f.queries("drop2.test")
      local out = fails("TIMEOUT", "temporary", "drop2.test", fault_args())
      assert.equal(before + 1, #f.queries("drop2.test"))
      assert.is_true(out.elapsed >= 0.25, "gave up after " .. out.elapsed .. " s")
    end)

    it("tries again as often as configured", function()
      local before = #f.queries("drop2.test")
      fails("TIMEOUT", "temporary", "drop2.test", fault_args { tries = 3, timeout = 0.2 })
      assert.equal(before + 3, #f.queries("drop2.test"))
    end)

    it("takes the right reply that follows one with a wrong ID", function()
      local p = ok("wrongid-ok.test", fault_args())
      assert.same(cases.OK_HOSTS, hosts_of(p))
      local reps = f.replies("wrongid-ok.test")
      assert.equal("wrong_id", reps[#reps - 1].action)
      assert.equal("then_ok", reps[#reps].action)
    end)

    it("asks again over TCP after a truncated UDP answer", function()
      cases.assert_tc(ok("tc.test", fault_args()), f)
    end)

    it("sends every A/AAAA query of a plan before any host answer comes back", function()
      local p = ok("parallel.test", fault_args { timeout = 2 })
      cases.assert_parallel(p, f)
    end)

    it("serves several light threads of one request on one resolver", function()
      local out = get_json("/parallel", fault_args { to = "lt1.test,lt2.test,lt3.test", timeout = 2 })
      assert.equal(3, #out)
      for _, o in ipairs(out) do
        assert.is_true(o.ok, tostring(o.error or o.message))
        assert.same({ "mx.ok.test" }, names_of(o.plan))
      end
      assert.same({ "lt1.test", "lt2.test", "lt3.test" },
                  { out[1].plan.domain, out[2].plan.domain, out[3].plan.domain })
      -- the three MX queries were all out before the first (delayed) reply
      local _, _, last_query, first_reply = cases.exchanges(f.log(), "^lt%d%.test$")
      assert.is_true(last_query < first_reply)
    end)

    describe("with several nameservers", function()
      local f2

      setup(function()
        f2 = fault.start {
          ["mx.ok.test"] = RULES["mx.ok.test"],
          ["rot.test"] = { rcode = "SERVFAIL" },
          ["rot2.test"] = { drop = true },
        }
      end)
      teardown(function() if f2 then f2.stop() end end)

      it("moves on to the next nameserver after SERVFAIL", function()
        local p = ok("rot.test", fault_args { ns = f2.addr .. "," .. f.addr })
        assert.same({ "mx.ok.test" }, names_of(p))
        assert.equal(1, #f2.queries("rot.test"))
        assert.equal(1, #f.queries { name = "rot.test", type = "MX" })
      end)

      it("moves on to the next nameserver after a timeout", function()
        local p = ok("rot2.test", fault_args { ns = f2.addr .. "," .. f.addr })
        assert.same({ "mx.ok.test" }, names_of(p))
        assert.equal(1, #f2.queries("rot2.test"))
      end)

      it("moves on to the next nameserver when the first refuses the connection", function()
        local p = ok("ok.test", fault_args { ns = "127.0.0.1:" .. dead_port() .. "," .. f.addr })
        assert.same({ "mx.ok.test" }, names_of(p))
      end)

      it("is NETWORK (temporary) when no nameserver listens", function()
        fails("NETWORK", "temporary", "ok.test", fault_args { ns = "127.0.0.1:" .. dead_port() })
      end)
    end)

    it("answers other requests at once while one waits on a silent nameserver", function()
      local b = srv.batch()
      local slow = b:get(nginx.path("/resolve", fault_args { to = "hang.test", timeout = 1 }))
      -- the slow request is in flight once its query reached the server
      assert.is_true(b:run_until(function() return #f.queries("hang.test") >= 1 end, 5))
      local fast = {}
      for i = 1, 5 do fast[i] = b:get(nginx.path("/resolve", fault_args { to = "ok.test" })) end
      b:wait(10)
      for i, r in ipairs(fast) do
        assert.equal(200, r.status)
        assert.is_true(cjson.decode(r.body).ok)
        assert.is_true(r.seq < slow.seq, ("fast request %d finished after the slow one"):format(i))
      end
      assert.equal(200, slow.status)
      assert.equal("TIMEOUT", cjson.decode(slow.body).code)
    end)

    it("shares a resolver made in init_by_lua among concurrent requests", function()
      local b = srv.batch()
      local reqs = {}
      for i = 1, 3 do reqs[i] = b:get("/shared?to=sh" .. i .. ".test") end
      b:wait(10)
      for i, r in ipairs(reqs) do
        assert.equal(200, r.status)
        local out = cjson.decode(r.body)
        assert.is_true(out.ok, tostring(out.message))
        assert.equal("sh" .. i .. ".test", out.plan.domain)
        assert.same({ "mx.ok.test" }, names_of(out.plan))
      end
      -- the requests overlapped: every MX query was out before the first
      -- (delayed) reply, each request on cosockets of its own
      local queries, _, last_query, first_reply = cases.exchanges(f.log(), "^sh%d%.test$")
      assert.equal(3, #queries)
      assert.is_true(last_query < first_reply)
    end)

    it("closing the resolver cancels a waiting resolution and ends its I/O", function()
      local t0 = now()
      local out = get_json("/close", fault_args { to = "hang2.test", timeout = 3, after = 0.1 })
      local took = now() - t0
      assert.is_false(out.ok)
      assert.equal("CANCELLED", out.code)
      assert.equal("temporary", out.class)
      -- not the 3 s the query had left: its reader light thread was stopped
      assert.is_true(took < 2, "the request took " .. took .. " s")
      assert.truthy(out.after_close:find("resolver is closed", 1, true), out.after_close)
    end)
  end)

  describe("the targets iterator", function()
    it("yields every target in delivery order", function()
      local out = get_json("/targets", { to = "backup.mx.test", ns = k.addr })
      assert.equal(3, #out.targets)
      assert.equal("mx1.backup.mx.test", out.targets[1].host)
      assert.equal("mx2.backup.mx.test", out.targets[3].host)
      assert.is_true(out.plan)
      assert.is_nil(out.code)
    end)

    it("can stop early", function()
      local out = get_json("/targets", { to = "backup.mx.test", ns = k.addr, limit = 1 })
      assert.equal(1, #out.targets)
      assert.equal("mx1.backup.mx.test", out.targets[1].host)
      assert.is_true(out.finished)
      assert.is_true(out.closed)
    end)

    it("yields a target as soon as its preference is final, before slower hosts answer", function()
      local out = get_json("/targets", { to = "early.test", ns = f.addr, limit = 1, timeout = 3 })
      assert.equal(1, #out.targets)
      assert.equal("a.early.test", out.targets[1].host)
      assert.is_true(out.closed)
      -- the backup host was asked, but its (delayed) answer had not come
      assert.is_true(#f.queries("b.early.test") >= 1)
      assert.equal(0, #f.replies("b.early.test"))
    end)

    it("does not wait for a loop busy between two targets to drive another resolution", function()
      local out = get_json("/busy", { ns = f.addr, timeout = 3 })
      assert.same({ "resolved", "slept", "slept", "slept", "slept", "slept" }, out)
    end)

    it("ends with the failure in state.code and state.message", function()
      local out = get_json("/targets", { to = "nosuch.mx.test", ns = k.addr })
      assert.equal(0, #out.targets)
      assert.equal("NXDOMAIN", out.code)
      assert.truthy(out.message:find("nosuch.mx.test", 1, true))
      -- the same contract as mxroute's targets(): info, and nil, message, code
      assert.equal("NXDOMAIN", out.info_code)
      assert.equal("NXDOMAIN", out.last_code)
      assert.equal(out.message, out.last_message)
      assert.is_nil(out.closed)
    end)
  end)

  describe("phases", function()
    it("works in a timer", function()
      local out = get_json("/timer", { to = "backup.mx.test", ns = k.addr })
      assert.is_true(out.ok)
      assert.equal("timer", out.phase)
      assert.same({ "mx1.backup.mx.test", "mx2.backup.mx.test" }, names_of(out.plan))
    end)

    it("works in the access phase", function()
      local out = get_json("/access", { to = "backup.mx.test", ns = k.addr })
      assert.is_true(out.ok)
      assert.equal("access", out.phase)
    end)

    local function phase_error(text, phase)
      assert.truthy(text:find("cosockets are not available in the '" .. phase .. "' phase", 1, true),
                    text)
    end

    it("raises a clear error in set_by_lua", function()
      local res = srv.get("/set")
      assert.equal(200, res.status)
      phase_error(res.body, "set")
    end)

    it("raises a clear error in header_filter_by_lua", function()
      local res = srv.get("/header")
      phase_error(res.headers["x-mxroute-error"] or "", "header_filter")
    end)

    it("raises a clear error in init_by_lua and init_worker_by_lua", function()
      local out = get_json("/init")
      phase_error(out.init, "init")
      phase_error(out.init_worker, "init_worker")
    end)
  end)

  describe("options", function()
    it("raises an error naming the bad option", function()
      local out = get_json("/badopts")
      local want = { "family", "'wait' does not apply", "nameservers", "timeout", "tries",
                     "unknown option 'bogus'", "seed", "nameservers", "self", "nameservers",
                     "nameservers': nameserver '0.0.0.0", "max_inflight", "dns0x20",
                     "input must be a string", "resolver is closed", "resolver is closed" }
      assert.equal(#want, #out)
      for i, w in ipairs(want) do
        assert.truthy(out[i]:find(w, 1, true), ("case %d: %s"):format(i, out[i]))
      end
    end)

    it("reads nameservers the way resolv.conf and mxroute write them", function()
      local out = get_json("/resolvconf")
      assert.same({ "192.0.2.53:53", "[2001:db8::53]:53", "198.51.100.53:53" }, out[1])
      assert.same({ "127.0.0.1:53" }, out[2])
      assert.same({ "192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:53" }, out[3])
    end)
  end)

  describe("under load", function()
    local bulk, dir
    local N = 200

    setup(function()
      dir = util.make_dir("bulkzone")
      local lines = { "$ORIGIN bulk.test.", "$TTL 300",
                      "@ SOA ns hostmaster 1 3600 900 604800 300", "@ NS ns", "ns A 192.0.2.53" }
      for i = 1, N do
        lines[#lines + 1] = ("d%d MX 10 mx.d%d"):format(i, i)
        lines[#lines + 1] = ("mx.d%d A 203.0.113.%d"):format(i, i)
      end
      util.write_file(dir .. "/bulk.test.zone", table.concat(lines, "\n") .. "\n")
      bulk = knot.start { zones = dir }
    end)

    teardown(function()
      if bulk then bulk.stop() end
      util.remove_dir(dir)
    end)

    it("resolves 200 domains in 200 concurrent requests on one worker", function()
      local b = srv.batch()
      local reqs = {}
      for i = 1, N do
        reqs[i] = b:get(nginx.path("/resolve", { to = ("user@d%d.bulk.test"):format(i), ns = bulk.addr }))
      end
      b:wait(60)
      for i, r in ipairs(reqs) do
        assert.equal(200, r.status, tostring(r.error))
        local out = cjson.decode(r.body)
        assert.is_true(out.ok, tostring(out.message))
        assert.same({ ("mx.d%d.bulk.test"):format(i) }, names_of(out.plan))
        assert.equal("203.0.113." .. i, out.plan.targets[1].addr)
      end
    end)
  end)

  describe("the example configuration (examples/nginx)", function()
    local ex, exf
    local repo = nginx.repo()

    setup(function()
      exf = fault.start { ["slow.example.test"] = { drop = true } }
      local fh = assert(io.open(repo .. "/examples/nginx/nginx.conf"))
      local original = fh:read("*a")
      fh:close()
      ex = nginx.start {
        prefix = repo,
        -- the example as it is, but for the port, the nameserver, one
        -- worker and the files it writes
        conf = function(tmp, port)
          local text = original
          local function sub(from, to)
            local s, n = text:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
            assert(n >= 1, "examples/nginx/nginx.conf has no '" .. from .. "'")
            text = s
          end
          sub("listen 127.0.0.1:8025;", "listen 127.0.0.1:" .. port .. ";")
          sub('set $mxroute_nameservers "127.0.0.1:53";',
              'set $mxroute_nameservers "' .. k.addr .. '";')
          sub("worker_processes auto;", "worker_processes 1;")
          sub("pid build/nginx-example.pid;", "pid " .. tmp .. "/nginx.pid;")
          sub("build/nginx-example-", tmp .. "/tmp-")
          if (uv.getuid and uv.getuid()) == 0 then text = "user root root;\n" .. text end
          -- one more location: the same handler against a silent server
          sub("        location = /route {", ([[
        location = /route-slow {
            set $mxroute_nameservers "%s";
            set $mxroute_timeout 0.3;
            set $mxroute_tries 1;
            content_by_lua_file examples/nginx/route.lua;
        }

        location = /route {]]):format(exf.addr))
          return text
        end,
      }
    end)

    teardown(function()
      if ex then ex.stop() end
      if exf then exf.stop() end
    end)

    it("answers GET /route?to= with the JSON line of mxroute --json", function()
      local res = ex.get("/route?to=user@backup.mx.test")
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.truthy(res.body:find('^{"input":"user@backup.mx.test","status":"ok","domain":"backup.mx.test"'),
                    res.body)
      local out = cjson.decode(res.body)
      assert.same(norm {
        { name = "mx1.backup.mx.test", pref = 10, addrs = { "192.0.2.11", "2001:db8::11" } },
        { name = "mx2.backup.mx.test", pref = 20, addrs = { "192.0.2.12" } },
      }, hosts_of(out))
      assert.equal(3, #out.targets)
    end)

    it("answers 200 with the error for a permanent failure", function()
      local res = ex.get("/route?to=nosuch.mx.test")
      assert.equal(200, res.status)
      local out = cjson.decode(res.body)
      assert.same({ "error", "NXDOMAIN", "permanent" }, { out.status, out.code, out.class })
    end)

    it("answers 400 for invalid or missing input", function()
      for _, path in ipairs { "/route?to=user@", "/route" } do
        local res = ex.get(path)
        assert.equal(400, res.status, path)
        local out = cjson.decode(res.body)
        assert.same({ "error", "BADNAME", "invalid" }, { out.status, out.code, out.class })
      end
    end)

    it("answers 503 with Retry-After for a temporary failure", function()
      local res = ex.get("/route-slow?to=slow.example.test")
      assert.equal(503, res.status)
      assert.truthy(res.headers["retry-after"])
      local out = cjson.decode(res.body)
      assert.same({ "error", "TIMEOUT", "temporary" }, { out.status, out.code, out.class })
    end)
  end)

  it("logs no Lua error and leaves nothing running", function()
    local log = srv.error_log()
    for _, bad in ipairs { "[alert]", "[crit]", "[emerg]", "runtime error", "thread aborted" } do
      local at = log:find(bad, 1, true)
      assert.falsy(at, "error log: " .. log:sub(at or 1, (at or 1) + 300))
    end
    -- query IDs are random: the queries of this spec carry (nearly) all
    -- different IDs
    local ids, n, distinct = {}, 0, 0
    for _, e in ipairs(f.queries()) do
      if e.id then
        n = n + 1
        if not ids[e.id] then distinct = distinct + 1 end
        ids[e.id] = true
      end
    end
    assert.is_true(n >= 50, "only " .. n .. " queries")
    assert.is_true(distinct >= n * 0.95, distinct .. " distinct IDs in " .. n .. " queries")
    local pids = { srv.pid }
    for _, w in ipairs(srv.workers) do pids[#pids + 1] = w end
    srv.stop()
    f.stop()
    for _, pid in ipairs(pids) do assert.is_false(alive(pid), "process " .. pid .. " still running") end
    assert.is_false(f.running())
    local ps = io.popen("ps -eo pid=,args="):read("*a")
    assert.falsy(ps:find(srv.prefix, 1, true), "a process still uses " .. srv.prefix)
  end)
end)
