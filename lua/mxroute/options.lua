--- mxroute.options: the option checks shared by `mxroute.resolver`,
-- `mxroute.plan` and `mxroute.ngx.resolver` (DESIGN 3), so that every
-- transport accepts the same fields with the same messages.
--
-- Each check returns the value, or nil, a message naming the field and
-- the field's name (as data: the CLI names the flag from it); `need`
-- raises that message at the user's level.
local core = require "mxroute.core"

local M = {}

local type, pairs, ipairs, tostring, next, rawget = type, pairs, ipairs, tostring, next, rawget
local floor = math.floor

--- need(v, msg) -> v, or raises msg at the level of whoever called the
-- function that calls need (the user of a public function). Call it as
-- `x = need(check(...))`, never in a tail call (`return (need(...))`).
function M.need(v, msg)
  if v == nil then error(msg, 3) end
  return v
end

--- The options of every resolver, once: name -> { plan = true for the
-- planner's (their values are checked in C, csrc/lopts.c), kind and
-- range for those checked by `value` here (the message says them),
-- flag: the command-line option that sets it (`mxroute.cli`) }.
M.FIELDS = {
  self = { plan = true, flag = "--self" },
  self_interfaces = { plan = true, flag = "--self-interfaces" },
  family = { plan = true, flag = "--family" },
  prefer = { plan = true, flag = "--prefer" },
  seed = { plan = true, flag = "--seed" },
  allow_mx_to_ip = { plan = true, flag = "--allow-mx-to-ip" },
  ignore_targets = { plan = true, flag = "--ignore-targets" },
  max_hosts = { plan = true, flag = "--max-hosts" },
  max_addrs = { plan = true, flag = "--max-addrs" },
  nameservers = { flag = "--nameserver" }, -- checked by M.nameservers
  timeout = { flag = "--timeout" },        -- checked by M.timeout
  tries = { kind = "integer", min = 1, max = 20, flag = "--tries" },
  cache = {},                              -- checked by M.cache
  max_inflight = { kind = "integer", min = 1, max = 65536 },
  udp_queries = { kind = "integer", min = 1, max = 65535 },
  health = { kind = "seconds", max = 86400 },
  dns0x20 = { kind = "boolean" },
  on_query = { kind = "function" },        -- DESIGN 9: traced tries
  routes = { flag = "--routes" },          -- DESIGN 7, checked by M.routes
}

--- Fields the planner understands, and those of every resolver
-- (transport settings): both from FIELDS.
M.PLAN_FIELDS, M.RESOLVER_FIELDS = {}, {}
for k, f in pairs(M.FIELDS) do
  if f.plan then M.PLAN_FIELDS[k] = true else M.RESOLVER_FIELDS[k] = true end
end

-- The exchange's fields, in the order they are checked.
local EXCHANGE = { "max_inflight", "udp_queries", "health", "dns0x20", "on_query" }

local EXPECTED = {
  integer = function(f) return ("expected an integer %d..%d"):format(f.min, f.max) end,
  seconds = function(f)
    return ("expected seconds, more than 0 and at most %d"):format(f.max)
  end,
  boolean = function() return "expected a boolean" end,
  ["function"] = function() return "expected a function" end,
}

local function fits(f, v)
  if f.kind == "integer" then
    return type(v) == "number" and v == floor(v) and v >= f.min and v <= f.max
  elseif f.kind == "seconds" then
    return type(v) == "number" and v == v and v > 0 and v <= f.max
  end
  return type(v) == f.kind
end

--- value(name, v, where) -> v | nil, message, name: v for the field
-- name of FIELDS that has a kind, checked against its kind and range.
function M.value(name, v, where)
  local f = M.FIELDS[name]
  if fits(f, v) then return v end
  return nil, ("%s: option '%s': %s"):format(where, name, EXPECTED[f.kind](f)), name
end

--- fields(opts, where, allowed, also, more) -> opts (a table) | nil, message.
-- Every key of opts must be in allowed, also or more.
function M.fields(opts, where, allowed, also, more)
  if opts == nil then return {} end
  if type(opts) ~= "table" then return nil, where .. ": options must be a table" end
  for k in pairs(opts) do
    if not (allowed[k] or (also and also[k]) or (more and more[k])) then
      if k == "shared_dict" then -- DESIGN 8: nginx workers only
        return nil, where .. ": option 'shared_dict': only mxroute.ngx resolvers"
          .. " share RRsets, through a lua_shared_dict", k
      end
      return nil, where .. ": unknown option '" .. tostring(k) .. "'", k
    end
  end
  return opts
end

--- nameserver(s) -> { name, addr, port, host } | nil, message.
-- The one nameserver parser (`core.nameserver`, in C: the options, the
-- CLI and `mxroute.ngx` accept the same servers with the same message):
-- "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]" or
-- "[2001:db8::1]:5353"; strict addresses, port 1..65535 (default 53);
-- unspecified, broadcast and multicast addresses refused. name is the
-- canonical "IP:PORT" ("[2001:db8::1]:53"), addr the address, host the
-- form a cosocket connects to ("[2001:db8::1]").
function M.nameserver(s)
  local name, addr, port = core.nameserver(s)
  if not name then return nil, addr end
  local host = addr:find(":", 1, true) and "[" .. addr .. "]" or addr
  return { name = name, addr = addr, port = port, host = host }
end

--- list(t, where, field) -> t | nil, message: t is a list, keys 1..n
-- and nothing else. A hole (`{ "a", nil, "b" }`, a sparse table) would
-- make the list end at whichever border the length operator finds, so it
-- is refused (the C options check theirs with the same words).
function M.list(t, where, field)
  local n, max = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= floor(k) then
      return nil, ("%s: option '%s': expected a list (a key is not an index 1..n)")
        :format(where, field), field
    end
    n = n + 1
    if k > max then max = k end
  end
  for i = 1, n ~= max and max or 0 do
    if rawget(t, i) == nil then
      return nil, ("%s: option '%s': expected a list without holes (entry %d is missing)")
        :format(where, field, i), field
    end
  end
  return t
end

--- nameservers(ns, where) -> list of nameserver() tables | nil, message.
-- ns: one string or a non-empty list of them.
function M.nameservers(ns, where)
  if type(ns) == "string" then ns = { ns } end
  if type(ns) ~= "table" or next(ns) == nil then
    return nil, where .. ": option 'nameservers': expected a non-empty list of IP[:PORT]",
      "nameservers"
  end
  local _, why = M.list(ns, where, "nameservers")
  if why then return nil, why, "nameservers" end
  local list = {}
  for i = 1, #ns do
    local v, msg = M.nameserver(ns[i])
    if not v then return nil, where .. ": option 'nameservers': " .. msg, "nameservers" end
    list[i] = v
  end
  return list
end

--- The largest timeout accepted, in seconds: a larger number is almost
-- certainly milliseconds (as lua-resty-dns and cosockets count).
M.MAX_TIMEOUT = 60

--- timeout(t, where) -> seconds | nil, message (seconds per try,
-- 0 < t <= MAX_TIMEOUT).
function M.timeout(t, where)
  if type(t) ~= "number" or t ~= t or t <= 0 then
    return nil, where .. ": option 'timeout': expected seconds, more than 0 and at most "
      .. M.MAX_TIMEOUT, "timeout"
  end
  if t > M.MAX_TIMEOUT then
    return nil, ("%s: option 'timeout': %s seconds is more than %d seconds"
      .. " (the timeout is in seconds, not milliseconds: 2 means 2 s)")
      :format(where, tostring(t), M.MAX_TIMEOUT), "timeout"
  end
  return t
end

--- tries(n, where) -> n | nil, message (an integer 1..20).
function M.tries(n, where)
  return M.value("tries", n, where)
end

-- DESIGN 8: the fields of `cache = { ... }`, their bounds and defaults
-- (the defaults are the C core's: csrc/mxroute.h).
local CACHE_FIELDS = {
  size = { 1, 100000000 },      -- entries kept (default 10000)
  min_ttl = { 0, 2147483647 },  -- default 0
  max_ttl = { 1, 2147483647 },  -- default 86400 (one day)
  stale = { 0, 2147483647 },    -- serve-stale window (default 0: off)
}
local DEFAULT_MAX_TTL = 86400

--- cache(v, where) -> false | the cache settings (a table) | nil, message.
-- v: nil or true (the default cache), false (none), or a table with
-- size, min_ttl, max_ttl, stale (integers; min_ttl <= max_ttl).
function M.cache(v, where)
  if v == nil or v == true then return {} end
  if v == false then return false end
  if type(v) ~= "table" then
    return nil, where .. ": option 'cache': expected a boolean or a table", "cache"
  end
  for k in pairs(v) do
    if not CACHE_FIELDS[k] then
      return nil, where .. ": option 'cache': unknown field '" .. tostring(k) .. "'", "cache"
    end
  end
  local out = {}
  for k, range in pairs(CACHE_FIELDS) do
    local n = v[k]
    if n ~= nil then
      if type(n) ~= "number" or n ~= floor(n) or n < range[1] or n > range[2] then
        return nil, ("%s: option 'cache.%s': expected an integer %d..%d")
          :format(where, k, range[1], range[2]), "cache"
      end
      out[k] = n
    end
  end
  if out.min_ttl and out.min_ttl > (out.max_ttl or DEFAULT_MAX_TTL) then
    return nil, ("%s: option 'cache.min_ttl': more than max_ttl (%d)")
      :format(where, out.max_ttl or DEFAULT_MAX_TTL), "cache"
  end
  return out
end

--- exchange(opts, where) -> { max_inflight, udp_queries, health, dns0x20,
-- trace } (the fields given) | nil, message, field. The exchange's
-- options (DESIGN 9, ranges in FIELDS): queries in flight, queries per
-- UDP socket, seconds a failed server is asked last, DNS 0x20; trace =
-- true when on_query (a function) is given.
function M.exchange(opts, where)
  local out = {}
  for _, k in ipairs(EXCHANGE) do
    local v = opts[k]
    if v ~= nil then
      local _, why, field = M.value(k, v, where)
      if why then return nil, why, field end
      out[k] = v
    end
  end
  -- on_query(ev) is called from step, once per finished try: the
  -- exchange records those events only when asked (trace)
  if out.on_query then out.on_query, out.trace = nil, true end
  return out
end

--- planner(opts, where) -> the C planner options | nil, message, field.
-- The C reader (csrc/lopts.c) begins each message with
-- "mxroute: option '<field>'".
function M.planner(opts, where)
  local ok, o = pcall(core.opts, opts)
  if not ok then
    o = tostring(o)
    return nil, (o:gsub("^mxroute:", where .. ":")), o:match("^mxroute: option '([%w_]+)'")
  end
  return o
end

--- routes(v, where) -> routes object | nil, message: the `routes` option
-- (mxroute.routes.postfix(...), mxroute.routes.new{...} or a table of
-- rules); nil stays nil.
function M.routes(v, where)
  if v == nil then return nil end
  local rt, why = require("mxroute.routes").check(v, where)
  if not rt then return nil, why, "routes" end
  return rt
end

--- resolver(opts, where, more) -> settings | nil, message, field: the
-- checks of mxroute.resolver's options, in the order it makes them
-- (more: the fields it adds, checked by it). settings = { opts (the
-- table), engine (core.engine's config), cache (M.cache's), planner
-- (core.opts), routes }. The CLI calls it to name the flag of a field.
function M.resolver(opts, where, more)
  local why, field
  opts, why, field = M.fields(opts, where, M.PLAN_FIELDS, M.RESOLVER_FIELDS, more)
  if not opts then return nil, why, field end
  local cfg = {}
  if opts.nameservers ~= nil then
    local list
    list, why, field = M.nameservers(opts.nameservers, where)
    if not list then return nil, why, field end
    local names = {}
    for i, ns in ipairs(list) do names[i] = ns.name end
    cfg.servers = table.concat(names, ",")
  end
  if opts.timeout ~= nil then
    local t
    t, why, field = M.timeout(opts.timeout, where)
    if not t then return nil, why, field end
    cfg.timeout_ms = math.max(1, floor(t * 1000 + 0.5))
  end
  if opts.tries ~= nil then
    cfg.tries, why, field = M.tries(opts.tries, where)
    if not cfg.tries then return nil, why, field end
  end
  local x
  x, why, field = M.exchange(opts, where)
  if not x then return nil, why, field end
  for k, v in pairs(x) do cfg[k] = v end
  local out = { opts = opts, engine = cfg }
  out.cache, why, field = M.cache(opts.cache, where)
  if out.cache == nil then return nil, why, field end
  out.planner, why, field = M.planner(opts, where)
  if not out.planner then return nil, why, field end
  if opts.routes ~= nil then
    out.routes, why, field = M.routes(opts.routes, where)
    if not out.routes then return nil, why, field end
  end
  return out
end

--- call(v, where) -> v (a table) | nil, message: the options of one call
-- (resolve, targets, submit), e.g. { sender = "a@example.org" }, which
-- routing rules and hooks receive.
function M.call(v, where)
  if v == nil then return {} end
  if type(v) ~= "table" then return nil, where .. ": call options must be a table" end
  if v.sender ~= nil and type(v.sender) ~= "string" then
    return nil, where .. ": call option 'sender': expected a string"
  end
  return v
end

--- class(code, where) -> class | nil, message: a code's class, for every
-- module's `class` function.
function M.class(code, where)
  if type(code) ~= "string" or not core.codes[code] then
    return nil, where .. ": unknown code '" .. tostring(code) .. "'"
  end
  return core.codes[code]
end

return M
