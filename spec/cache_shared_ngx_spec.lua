-- mxroute.ngx's `shared_dict` (DESIGN 8): the worker cache gets a second
-- level in a lua_shared_dict, so that workers share RRsets. What one
-- resolver stored is found by a cache that never saw it: the same
-- worker's cache after r:flush(), and the cache of resolvers pointed at
-- a dead nameserver (another cache, as another worker's is), which can
-- only answer from the dict. Against the shared Knot; the spec speaks
-- HTTP only, so it runs under Lua 5.4 and LuaJIT.
local cjson = require "cjson"
local uv = require "luv"
local knot = require "support.knot"
local nginx = require "support.nginx"

local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"

local M = {}

local function resolver(args)
  local cache = true
  if args.max_ttl then cache = { max_ttl = tonumber(args.max_ttl) } end
  return mxngx.resolver { nameservers = { args.ns }, family = "ipv4",
                          timeout = 1, tries = 1, cache = cache,
                          shared_dict = args.shared }
end

function M.resolve()
  local args = ngx.req.get_uri_args()
  local r = resolver(args)
  local p, msg, code, info = r:resolve(args.to)
  local out = { ok = p ~= nil, code = code, message = msg,
                ttl = p and p.ttl or info and info.ttl,
                stats = r:cache_stats(), queries = r:stats().queries }
  r:close()
  ngx.say(cjson.encode(out))
end

function M.flush()
  local r = resolver(ngx.req.get_uri_args())
  ngx.say(cjson.encode { n = r:flush() })
end

function M.poke()
  local args = ngx.req.get_uri_args()
  ngx.shared.mxr:set(args.key, args.val)
  ngx.say("{}")
end

function M.peek()
  local v = ngx.shared.mxr:get(ngx.req.get_uri_args().key)
  ngx.say(cjson.encode { kind = type(v), head = type(v) == "string" and v:sub(1, 3) or nil })
end

-- a resolver made with these options: its error, if any
function M.opt()
  local args = ngx.req.get_uri_args()
  local opts = { nameservers = { args.ns } }
  if args.cache == "off" then opts.cache = false end
  if args.number then opts.shared_dict = 42 else opts.shared_dict = args.shared end
  local ok, err = pcall(mxngx.resolver, opts)
  ngx.say(cjson.encode { ok = ok, err = not ok and tostring(err) or nil })
end

return M
]==]

local SERVER_CONF = [[
        default_type text/plain;
        location = /resolve { content_by_lua_block { require("sharedtest").resolve() } }
        location = /flush { content_by_lua_block { require("sharedtest").flush() } }
        location = /poke { content_by_lua_block { require("sharedtest").poke() } }
        location = /peek { content_by_lua_block { require("sharedtest").peek() } }
        location = /opt { content_by_lua_block { require("sharedtest").opt() } }
]]

-- nothing listens there: a resolution that needs the network fails
local DEAD = "127.0.0.1:1"

describe("mxroute.ngx's shared_dict", function()
  local k, srv

  setup(function()
    k = knot.shared()
    srv = nginx.start { http = "lua_shared_dict mxr 1m;", server = SERVER_CONF,
                        files = { ["sharedtest.lua"] = APP } }
  end)

  teardown(function() if srv then srv.stop() end end)

  local function get(path, args)
    args.ns = args.ns or k.addr
    local res = srv.get(nginx.path(path, args))
    assert.equal(200, res.status, tostring(res.body))
    return cjson.decode(res.body)
  end

  it("is filled by a resolution and answers caches that never asked", function()
    local a = get("/resolve", { to = "pair.ttl.test", shared = "mxr" })
    assert.is_true(a.ok, a.message)
    assert.equal(0, a.stats.shared_hits)
    assert.equal("mxc", get("/peek", { key = "mxr1:15:pair.ttl.test" }).head)
    assert.equal("mxc", get("/peek", { key = "mxr1:1:a.pair.ttl.test" }).head)
    uv.sleep(1100)
    -- the same worker's cache, emptied: answered by the dict, no query
    get("/flush", { shared = "mxr" })
    local b = get("/resolve", { to = "pair.ttl.test", shared = "mxr" })
    assert.is_true(b.ok, b.message)
    assert.equal(0, b.queries)
    assert.equal(a.stats.misses, b.stats.misses)
    assert.equal(3, b.stats.shared_hits) -- MX, a.pair A, b.pair A
    assert.is_true(b.ttl < a.ttl, b.ttl .. " after " .. a.ttl) -- counts down
    -- another cache whose nameserver is dead: only the dict can answer
    local c = get("/resolve", { to = "pair.ttl.test", shared = "mxr", ns = DEAD })
    assert.is_true(c.ok, c.message)
    assert.equal(0, c.queries)
    assert.equal(3, c.stats.shared_hits)
    assert.is_true(c.ttl < a.ttl)
    -- without the option the dead nameserver's cache has nothing
    local d = get("/resolve", { to = "pair.ttl.test", ns = DEAD })
    assert.is_false(d.ok)
    assert.is_nil(d.stats.shared_hits)
  end)

  it("ignores a corrupt value: a miss, then a real query that replaces it", function()
    local a = get("/resolve", { to = "shared1.ttl.test", shared = "mxr" })
    assert.is_true(a.ok, a.message)
    get("/flush", { shared = "mxr" })
    get("/poke", { key = "mxr1:15:shared1.ttl.test", val = "mxc\1garbage" })
    local dead = get("/resolve", { to = "shared1.ttl.test", shared = "mxr", ns = DEAD })
    assert.is_false(dead.ok) -- the corrupt MX is not data
    local b = get("/resolve", { to = "shared1.ttl.test", shared = "mxr" })
    assert.is_true(b.ok, b.message)
    assert.equal(1, b.queries) -- the MX; mx.provider's A came from the dict
    assert.equal(a.stats.misses + 1, b.stats.misses)
    assert.equal(a.stats.shared_hits + 1, b.stats.shared_hits) -- counters add up
    assert.equal("mxc", get("/peek", { key = "mxr1:15:shared1.ttl.test" }).head)
    local c = get("/resolve", { to = "shared1.ttl.test", shared = "mxr", ns = DEAD })
    assert.is_true(c.ok, c.message)
  end)

  it("lets entries expire with their TTL, in the dict as well", function()
    -- MX TTL 3, A TTL 2
    local a = get("/resolve", { to = "short.ttl.test", shared = "mxr" })
    assert.is_true(a.ok, a.message)
    local b = get("/resolve", { to = "short.ttl.test", shared = "mxr", ns = DEAD })
    assert.is_true(b.ok, b.message)
    uv.sleep(3100)
    assert.equal("nil", get("/peek", { key = "mxr1:15:short.ttl.test" }).kind)
    local c = get("/resolve", { to = "short.ttl.test", shared = "mxr", ns = DEAD })
    assert.is_false(c.ok)
  end)

  it("is capped by the reader's max_ttl", function()
    local a = get("/resolve", { to = "shared2.ttl.test", shared = "mxr" })
    assert.is_true(a.ok, a.message)
    local b = get("/resolve", { to = "shared2.ttl.test", shared = "mxr", ns = DEAD,
                                max_ttl = 5 })
    assert.is_true(b.ok, b.message)
    assert.is_true(b.ttl <= 5, tostring(b.ttl))
  end)

  it("refuses a bad option, naming it", function()
    local none = get("/opt", { shared = "nosuch" })
    assert.is_false(none.ok)
    assert.matches("option 'shared_dict': no lua_shared_dict named 'nosuch'", none.err, 1, true)
    local num = get("/opt", { number = "1" })
    assert.matches("option 'shared_dict': expected the name of a lua_shared_dict", num.err, 1, true)
    local off = get("/opt", { shared = "mxr", cache = "off" })
    assert.matches("option 'shared_dict': needs the cache", off.err, 1, true)
    assert.is_true(get("/opt", { shared = "mxr" }).ok)
  end)

  it("is refused by mxroute.resolver, which has no shared dicts", function()
    local mxroute = require "mxroute"
    local ok, err = pcall(mxroute.resolver, { nameservers = { k.addr }, shared_dict = "mxr" })
    assert.is_false(ok)
    assert.matches("mxroute.resolver: option 'shared_dict': only mxroute.ngx", err, 1, true)
  end)
end)

-- Two workers, deterministically: at start, worker 0 resolves through
-- Knot; worker 1 waits until it has, then resolves through a dead
-- nameserver, which only the dict shared with worker 0 can answer. Each
-- records what it got in another dict, read back over HTTP.
local TWO = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"

local M = {}

local function run(id)
  local t = ngx.shared.results
  local r = mxngx.resolver { nameservers = { id == 0 and NS or "127.0.0.1:1" },
                             family = "ipv4", timeout = 1, tries = 1,
                             shared_dict = "mxr" }
  if id == 1 then
    for _ = 1, 200 do
      if t:get("w0") then break end
      ngx.sleep(0.05)
    end
  end
  local p, msg = r:resolve("pair.ttl.test")
  t:set("w" .. id, cjson.encode { ok = p ~= nil, message = msg, pid = ngx.worker.pid(),
                                  stats = r:cache_stats(), queries = r:stats().queries })
  r:close()
end

function M.init_worker()
  local id = ngx.worker.id()
  if id == 0 or id == 1 then
    ngx.timer.at(0, function()
      local ok, err = pcall(run, id)
      if not ok then ngx.shared.results:set("w" .. id, cjson.encode { ok = false, message = err }) end
    end)
  end
end

function M.result()
  local t = ngx.shared.results
  ngx.say(cjson.encode { w0 = t:get("w0"), w1 = t:get("w1") })
end

return M
]==]

describe("mxroute.ngx's shared_dict across two workers", function()
  local k, srv

  setup(function()
    k = knot.shared()
    srv = nginx.start {
      workers = 2,
      http = [[
    lua_shared_dict mxr 1m;
    lua_shared_dict results 64k;
    init_worker_by_lua_block { require("twotest").init_worker() }
]],
      server = [[
        location = /result { content_by_lua_block { require("twotest").result() } }
]],
      files = { ["twotest.lua"] = TWO:gsub("NS", ("%q"):format(k.addr), 1) },
    }
  end)

  teardown(function() if srv then srv.stop() end end)

  it("shares what one worker resolved with the other", function()
    local res
    for _ = 1, 200 do
      res = cjson.decode(srv.get("/result").body)
      if res.w0 and res.w1 then break end
      uv.sleep(50)
    end
    assert.is_truthy(res.w0 and res.w1, "both workers reported")
    local w0, w1 = cjson.decode(res.w0), cjson.decode(res.w1)
    assert.is_true(w0.ok, w0.message)
    assert.is_true(w1.ok, w1.message)
    assert.are_not.equal(w0.pid, w1.pid)
    assert.equal(0, w0.stats.shared_hits)
    assert.equal(3, w1.stats.shared_hits) -- MX, a.pair A, b.pair A
    assert.equal(0, w1.queries)
  end)
end)
