--- mxroute.options: the option checks shared by `mxroute.resolver`,
-- `mxroute.plan` and `mxroute.ngx.resolver` (DESIGN 3), so that every
-- transport accepts the same fields with the same messages.
--
-- Each check returns the value, or nil and a message naming the field;
-- `need` raises that message at the user's level.
local core = require "mxroute.core"

local M = {}

local type, pairs, tostring, next, rawget = type, pairs, tostring, next, rawget
local floor = math.floor

--- need(v, msg) -> v, or raises msg at the level of whoever called the
-- function that calls need (the user of a public function). Call it as
-- `x = need(check(...))`, never in a tail call (`return (need(...))`).
function M.need(v, msg)
  if v == nil then error(msg, 3) end
  return v
end

--- Fields the planner understands (their values are checked in C).
M.PLAN_FIELDS = {
  self = true, self_interfaces = true, family = true, prefer = true, seed = true,
  allow_mx_to_ip = true, ignore_targets = true, max_hosts = true,
  max_addrs = true,
}

--- Fields of every resolver (transport settings).
M.RESOLVER_FIELDS = {
  nameservers = true, timeout = true, tries = true, cache = true,
  max_inflight = true, udp_queries = true, health = true, dns0x20 = true,
}
M.RESOLVER_FIELDS.routes = true -- DESIGN 7, checked by M.routes
M.RESOLVER_FIELDS.on_query = true -- checked by M.exchange

--- fields(opts, where, allowed, also, more) -> opts (a table) | nil, message.
-- Every key of opts must be in allowed, also or more.
function M.fields(opts, where, allowed, also, more)
  if opts == nil then return {} end
  if type(opts) ~= "table" then return nil, where .. ": options must be a table" end
  for k in pairs(opts) do
    if not (allowed[k] or (also and also[k]) or (more and more[k])) then
      if k == "shared_dict" then -- DESIGN 8: nginx workers only
        return nil, where .. ": option 'shared_dict': only mxroute.ngx resolvers"
          .. " share RRsets, through a lua_shared_dict"
      end
      return nil, where .. ": unknown option '" .. tostring(k) .. "'"
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
        :format(where, field)
    end
    n = n + 1
    if k > max then max = k end
  end
  for i = 1, n ~= max and max or 0 do
    if rawget(t, i) == nil then
      return nil, ("%s: option '%s': expected a list without holes (entry %d is missing)")
        :format(where, field, i)
    end
  end
  return t
end

--- nameservers(ns, where) -> list of nameserver() tables | nil, message.
-- ns: one string or a non-empty list of them.
function M.nameservers(ns, where)
  if type(ns) == "string" then ns = { ns } end
  if type(ns) ~= "table" or next(ns) == nil then
    return nil, where .. ": option 'nameservers': expected a non-empty list of IP[:PORT]"
  end
  local _, why = M.list(ns, where, "nameservers")
  if why then return nil, why end
  local list = {}
  for i = 1, #ns do
    local v, msg = M.nameserver(ns[i])
    if not v then return nil, where .. ": option 'nameservers': " .. msg end
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
      .. M.MAX_TIMEOUT
  end
  if t > M.MAX_TIMEOUT then
    return nil, ("%s: option 'timeout': %s seconds is more than %d seconds"
      .. " (the timeout is in seconds, not milliseconds: 2 means 2 s)")
      :format(where, tostring(t), M.MAX_TIMEOUT)
  end
  return t
end

--- tries(n, where) -> n | nil, message (an integer 1..20).
function M.tries(n, where)
  if type(n) ~= "number" or n ~= floor(n) or n < 1 or n > 20 then
    return nil, where .. ": option 'tries': expected an integer 1..20"
  end
  return n
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
    return nil, where .. ": option 'cache': expected a boolean or a table"
  end
  for k in pairs(v) do
    if not CACHE_FIELDS[k] then
      return nil, where .. ": option 'cache': unknown field '" .. tostring(k) .. "'"
    end
  end
  local out = {}
  for k, range in pairs(CACHE_FIELDS) do
    local n = v[k]
    if n ~= nil then
      if type(n) ~= "number" or n ~= floor(n) or n < range[1] or n > range[2] then
        return nil, ("%s: option 'cache.%s': expected an integer %d..%d")
          :format(where, k, range[1], range[2])
      end
      out[k] = n
    end
  end
  if out.min_ttl and out.min_ttl > (out.max_ttl or DEFAULT_MAX_TTL) then
    return nil, ("%s: option 'cache.min_ttl': more than max_ttl (%d)")
      :format(where, out.max_ttl or DEFAULT_MAX_TTL)
  end
  return out
end

local function integer(n, lo, hi)
  return type(n) == "number" and n == floor(n) and n >= lo and n <= hi
end

--- exchange(opts, where) -> { max_inflight, udp_queries, health, dns0x20,
-- trace } (the fields given) | nil, message. The exchange's options
-- (DESIGN 9): queries in flight (1..65536), queries per UDP socket
-- (1..65535), seconds a failed server is asked last (more than 0, at most
-- 86400), DNS 0x20 (a boolean); trace = true when on_query (a function)
-- is given.
function M.exchange(opts, where)
  local out = {}
  local v = opts.max_inflight
  if v ~= nil then
    if not integer(v, 1, 65536) then
      return nil, where .. ": option 'max_inflight': expected an integer 1..65536"
    end
    out.max_inflight = v
  end
  v = opts.udp_queries
  if v ~= nil then
    if not integer(v, 1, 65535) then
      return nil, where .. ": option 'udp_queries': expected an integer 1..65535"
    end
    out.udp_queries = v
  end
  v = opts.health
  if v ~= nil then
    if type(v) ~= "number" or v ~= v or v <= 0 or v > 86400 then
      return nil, where .. ": option 'health': expected seconds, more than 0 and at most 86400"
    end
    out.health = v
  end
  v = opts.dns0x20
  if v ~= nil then
    if type(v) ~= "boolean" then
      return nil, where .. ": option 'dns0x20': expected a boolean"
    end
    out.dns0x20 = v
  end
  -- on_query(ev) is called from step, once per finished try: the
  -- exchange records those events only when asked (trace)
  v = opts.on_query
  if v ~= nil then
    if type(v) ~= "function" then
      return nil, where .. ": option 'on_query': expected a function"
    end
    out.trace = true
  end
  return out
end

--- planner(opts, where) -> the C planner options | nil, message.
function M.planner(opts, where)
  local ok, o = pcall(core.opts, opts)
  if not ok then return nil, (tostring(o):gsub("^mxroute:", where .. ":")) end
  return o
end

--- routes(v, where) -> routes object | nil, message: the `routes` option
-- (mxroute.routes.postfix(...), mxroute.routes.new{...} or a table of
-- rules); nil stays nil.
function M.routes(v, where)
  if v == nil then return nil end
  return require("mxroute.routes").check(v, where)
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
