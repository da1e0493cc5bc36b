--- mxroute.options: the option checks shared by `mxroute.resolver`,
-- `mxroute.plan` and `mxroute.ngx.resolver` (DESIGN 3), so that every
-- transport accepts the same fields with the same messages.
--
-- Each check returns the value, or nil and a message naming the field;
-- `need` raises that message at the user's level.
local core = require "mxroute.core"

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
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
  nameservers = true, timeout = true, tries = true,
  max_inflight = true, udp_queries = true, health = true, dns0x20 = true,
}

--- fields(opts, where, allowed, also) -> opts (a table) | nil, message.
-- Every key of opts must be in allowed or also.
function M.fields(opts, where, allowed, also)
  if opts == nil then return {} end
  if type(opts) ~= "table" then return nil, where .. ": options must be a table" end
  for k in pairs(opts) do
    if not (allowed[k] or (also and also[k])) then
      return nil, where .. ": unknown option '" .. tostring(k) .. "'"
    end
  end
  return opts
end

--- nameserver(s) -> { host, port, name } | nil, why.
-- "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53" or "2001:db8::1";
-- host is "192.0.2.1" or "[2001:db8::1]", name "host:port" (the c-ares
-- form), the port 53 unless given.
function M.nameserver(s)
  if type(s) ~= "string" then return nil, "expected a string" end
  local ip, port = s:match("^(%d+%.%d+%.%d+%.%d+):?(%d*)$")
  local host
  if ip then
    for o in ip:gmatch("%d+") do
      if #o > 3 or tonumber(o) > 255 then return nil, "bad IPv4 address" end
    end
    host = ip
  else
    ip, port = s:match("^%[([%x:%.]+)%]:?(%d*)$")
    if not ip and s:find(":", 1, true) and s:match("^[%x:%.]+$") then
      ip, port = s, ""
    end
    if not ip or not ip:find(":", 1, true) then return nil, "expected IP[:PORT]" end
    host = "[" .. ip .. "]"
  end
  if port == "" then port = "53" end
  local p = tonumber(port)
  if not p or p < 1 or p > 65535 or p ~= floor(p) then return nil, "bad port" end
  return { host = host, port = p, name = host .. ":" .. p }
end

--- nameservers(ns, where) -> list of nameserver() tables | nil, message.
-- ns: one string or a non-empty list of them.
function M.nameservers(ns, where)
  if type(ns) == "string" then ns = { ns } end
  if type(ns) ~= "table" or #ns == 0 then
    return nil, where .. ": option 'nameservers': expected a non-empty list of IP[:PORT]"
  end
  local list = {}
  for i, s in ipairs(ns) do
    local v, why = M.nameserver(s)
    if not v then
      return nil, ("%s: option 'nameservers': '%s' %s"):format(where, tostring(s), why)
    end
    list[i] = v
  end
  return list
end

--- timeout(t, where) -> seconds | nil, message (seconds per try, 0 < t <= 3600).
function M.timeout(t, where)
  if type(t) ~= "number" or t ~= t or t <= 0 or t > 3600 then
    return nil, where .. ": option 'timeout': expected seconds, more than 0 and at most 3600"
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

local function integer(n, lo, hi)
  return type(n) == "number" and n == floor(n) and n >= lo and n <= hi
end

--- exchange(opts, where) -> { max_inflight, udp_queries, health, dns0x20 }
-- (the fields given) | nil, message. The exchange's options (DESIGN 9):
-- queries in flight (1..65536), queries per UDP socket (1..65535),
-- seconds a failed server is asked last (more than 0, at most 86400),
-- DNS 0x20 (a boolean).
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
  return out
end

--- planner(opts, where) -> the C planner options | nil, message.
function M.planner(opts, where)
  local ok, o = pcall(core.opts, opts)
  if not ok then return nil, (tostring(o):gsub("^mxroute:", where .. ":")) end
  return o
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
