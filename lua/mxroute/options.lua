--- mxroute.options: the option checks shared by `mxroute.resolver`,
-- `mxroute.plan` and `mxroute.ngx.resolver` (DESIGN 3), so that every
-- transport accepts the same fields with the same messages, read from
-- the one definition of the options (csrc/loptions.c, exported as
-- core.options).
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

--- The options, defined once in C (csrc/loptions.c, mxr_lua_options) and read
-- here: LIST in the order they are checked and documented, FIELDS by
-- name. Each is { name, kind, layer, min, max, values, value, default,
-- flag, arg, help, cli, elsewhere, plan }: kind "boolean", "integer",
-- "seconds", "oneof" (values), "function" (simple values, checked by
-- core.option_check), "names", "cidrs" (the planner's lists),
-- "nameservers", "cache", "routes", "wait" or "shared_dict"; layer
-- "plan" (read by core.opts), "resolver" (every resolver), "mxroute"
-- (mxroute.resolver only), "ngx" (mxroute.ngx.resolver only) or "cache"
-- (a field of cache = {...}, named "cache.size"); flag the command-line
-- option that sets it (mxroute.cli); elsewhere the message a resolver
-- without it gives; plan = true for the planner's.
M.LIST = core.options
M.FIELDS = {}
for _, f in ipairs(M.LIST) do
  f.plan = f.layer == "plan" or nil
  M.FIELDS[f.name] = f
end

-- The layers each caller accepts fields of: mxroute.resolver ("mxroute"),
-- mxroute.ngx.resolver ("ngx"), mxroute.plan ("plan").
local ACCEPTS = {
  mxroute = { plan = true, resolver = true, mxroute = true },
  ngx = { plan = true, resolver = true, ngx = true },
  plan = { plan = true },
}

--- value(name, v, where) -> v | nil, message, name: v checked as the
-- simple option name (core.option_check: one check for every layer).
function M.value(name, v, where)
  local ok, why = core.option_check(name, v)
  if ok ~= nil then return v end
  return nil, ("%s: option '%s': %s"):format(where, name, why), name
end

--- fields(opts, where, layer) -> opts (a table) | nil, message, field.
-- Every key of opts must be a field the layer accepts ("mxroute",
-- "ngx" or "plan", see ACCEPTS); a field of the other resolver says
-- so (its elsewhere message).
function M.fields(opts, where, layer)
  if opts == nil then return {} end
  if type(opts) ~= "table" then return nil, where .. ": options must be a table" end
  local accepts = ACCEPTS[layer]
  for k in pairs(opts) do
    local f = M.FIELDS[k]
    if not (f and accepts[f.layer]) then
      if f and f.elsewhere and accepts.resolver then
        return nil, where .. ": option '" .. k .. "'" .. f.elsewhere, k
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

-- DESIGN 8: the fields of `cache = { ... }` are the options named
-- "cache.<field>" (ranges and defaults in FIELDS; the defaults are the C
-- core's, csrc/mxroute.h).
local CACHE_FIELDS = {}
for _, f in ipairs(M.LIST) do
  if f.layer == "cache" then CACHE_FIELDS[f.name:match("^cache%.(.+)$")] = f.name end
end

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
  for k, name in pairs(CACHE_FIELDS) do
    if v[k] ~= nil then
      local n, why = M.value(name, v[k], where)
      if n == nil then return nil, why, "cache" end
      out[k] = n
    end
  end
  local max_ttl = out.max_ttl or tonumber(M.FIELDS["cache.max_ttl"].default)
  if out.min_ttl and out.min_ttl > max_ttl then
    return nil, ("%s: option 'cache.min_ttl': more than max_ttl (%d)"):format(where, max_ttl),
      "cache"
  end
  return out
end

--- planner(opts, where) -> the C planner options | nil, message, field:
-- core.opts, which returns a bad field's name as data.
function M.planner(opts, where)
  local o, why, field = core.opts(opts)
  if not o then return nil, ("%s: option '%s': %s"):format(where, field, why), field end
  return o
end

--- plan(opts, where) -> the C planner options | nil, message, field:
-- the options of mxroute.plan (the planner's fields only).
function M.plan(opts, where)
  local why, field
  opts, why, field = M.fields(opts, where, "plan")
  if not opts then return nil, why, field end
  return M.planner(opts, where)
end

--- routes(v, where) -> routes object | nil, message: the `routes` option
-- (mxroute.routes.postfix(...), mxroute.routes.new{...} or a table of
-- rules).
function M.routes(v, where)
  local rt, why = require("mxroute.routes").check(v, where)
  if not rt then return nil, why, "routes" end
  return rt
end

--- wait(w, where) -> w | nil, message: mxroute.resolver's waiter (doc/async.md).
function M.wait(w, where)
  local t = type(w)
  if w == "yield" or w == "block" or t == "function" or (t == "table" and type(w.wait) == "function") then
    return w
  end
  return nil, where .. [[: option 'wait': expected "yield", "block", a function or a scheduler]],
    "wait"
end

-- The check of each kind of value: check(v, where, name, settings) -> the
-- setting | nil, message, field. The simple kinds go to core.option_check.
local CHECK = {
  nameservers = function(v, where) return M.nameservers(v, where) end,
  cache = function(v, where) return M.cache(v, where) end,
  routes = function(v, where) return M.routes(v, where) end,
  wait = function(v, where) return M.wait(v, where) end,
}

-- The fields options.resolver checks (the planner's are core.opts's).
local CHECKED = {}
for _, f in ipairs(M.LIST) do
  if not f.plan and f.layer ~= "cache" then CHECKED[#CHECKED + 1] = f end
end

-- The exchange's settings and core.engine's config from the checked
-- settings of a resolver.
local function engine_config(set)
  local x = { max_inflight = set.max_inflight, udp_queries = set.udp_queries,
              health = set.health, dns0x20 = set.dns0x20, trace = set.on_query and true }
  local eng = { tries = set.tries }
  for k, v in pairs(x) do eng[k] = v end
  if set.nameservers then
    local names = {}
    for i, ns in ipairs(set.nameservers) do names[i] = ns.name end
    eng.servers = table.concat(names, ",")
  end
  if set.timeout then eng.timeout_ms = math.max(1, floor(set.timeout * 1000 + 0.5)) end
  return x, eng
end

--- resolver(opts, where [, layer [, own]]) -> settings | nil, message,
-- field: the options of a resolver checked, in the order of LIST, by
-- the checks of their kinds. layer: "mxroute" (mxroute.resolver, the
-- default) or "ngx"; own: kind -> check(v, where, name, settings) for
-- the kinds the caller checks itself (mxroute.ngx: shared_dict).
-- settings: each field given, checked, by name (nameservers: a list of
-- M.nameserver tables), cache (the default {} when not given), planner
-- (core.opts), exchange (the exchange's fields: max_inflight,
-- udp_queries, health, dns0x20, trace = true with on_query), engine
-- (core.engine's config) and opts (the table).
function M.resolver(opts, where, layer, own)
  local why, field
  opts, why, field = M.fields(opts, where, layer or "mxroute")
  if not opts then return nil, why, field end
  local set = { opts = opts, cache = {} }
  for i = 1, #CHECKED do -- in LIST order; the planner's: core.opts, below
    local f = CHECKED[i]
    local v = opts[f.name]
    if v ~= nil then
      local check = own and own[f.kind] or CHECK[f.kind]
      if check then
        v, why, field = check(v, where, f.name, set)
      else
        v, why, field = M.value(f.name, v, where)
      end
      if v == nil then return nil, why, field or f.name end
      set[f.name] = v
    end
  end
  set.planner, why, field = M.planner(opts, where)
  if not set.planner then return nil, why, field end
  set.exchange, set.engine = engine_config(set)
  return set
end

--- call(v, where) -> v (a table) | nil, message, field: the options of one call
-- (resolve, targets, submit), e.g. { sender = "a@example.org" }, which
-- routing rules and hooks receive.
function M.call(v, where)
  if v == nil then return {} end
  if type(v) ~= "table" then return nil, where .. ": call options must be a table" end
  if v.sender ~= nil and type(v.sender) ~= "string" then
    return nil, where .. ": call option 'sender': expected a string", "sender"
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
