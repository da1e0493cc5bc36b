--- mxroute.routes: routing policies (DESIGN 7) — where *we* deliver.
--
-- A route is chosen for each recipient before any lookup; the C core then
-- resolves what the route names (one plan per nexthop, fallback relays,
-- ports; csrc/route.c). Tables follow Postfix transport(5) as Postfix 3.7
-- reads them, so existing maps work unchanged:
--
--   routes.postfix(text [, opts])   a transport(5) table -> routes
--   routes.new(spec)                Lua rules, maps, fallback relays, hooks
--
-- and `mxroute.resolver{ routes = ... }` (also mxroute.ngx and the CLI's
-- --routes FILE) honours them. `routes.res` builds the resolution for one
-- recipient; every transport calls it when routes are set, so they all
-- route the same way.
local core = require "mxroute.core"

local M = {}

local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable =
  type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable
local lower = string.lower

local HOPS_MAX = 16 -- MXR_HOPS_MAX: nexthops + fallback relays of a route

local Routes = {}
Routes.__index = Routes

-- Port names Postfix accepts in "host:service" (smtp(8)); numbers too.
local SERVICES = { smtp = 25, submission = 587, smtps = 465, submissions = 465, lmtp = 24 }

-- transport(5), RESULT FORMAT: a null transport "does not modify the
-- transport information", i.e. keeps Postfix's default_transport (smtp).
local DEFAULT_TRANSPORT = "smtp"

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function port_of(s)
  if s:match("^%d+$") then
    local p = tonumber(s)
    if p >= 1 and p <= 65535 then return p end
    return nil, "port " .. s .. " is out of range 1..65535"
  end
  local p = SERVICES[lower(s)]
  if p then return p end
  return nil, "unknown service '" .. s .. "' (a port number, or smtp, submission, smtps, lmtp)"
end

-- One nexthop destination (smtp(8)): "[host]", "[host]:port",
-- "[192.0.2.1]", "[ipv6:2001:db8::1]", "host", "host:port"; "inet:" as
-- LMTP writes it. -> { name, mx, port, text } | nil, why
local function parse_hop(s)
  local text = s
  if lower(s:sub(1, 5)) == "inet:" then s = s:sub(6) end
  if lower(s:sub(1, 5)) == "unix:" then
    return nil, "nexthop '" .. text .. "' is a local socket, not a DNS destination"
  end
  local port = 25
  local inner, rest = s:match("^%[(.*)%](.*)$")
  if inner then
    if rest ~= "" then
      local p = rest:match("^:(.+)$")
      if not p then return nil, "text after ']' in nexthop '" .. text .. "'" end
      local why
      port, why = port_of(p)
      if not port then return nil, why .. " in nexthop '" .. text .. "'" end
    end
    local lit
    if lower(inner:sub(1, 5)) == "ipv6:" then
      lit = "[IPv6:" .. inner:sub(6) .. "]"
    elseif inner:match("^[%d.]+$") then
      lit = "[" .. inner .. "]"
    end
    if lit then
      local kind, name = core.parse(lit)
      if kind ~= "literal" then
        return nil, "bad address in nexthop '" .. text .. "': " .. tostring(name)
      end
      return { name = name, mx = false, port = port, text = text }
    end
    if inner:find(":", 1, true) then
      return nil, "nexthop '" .. text .. "': an IPv6 address is written [ipv6:ADDRESS]"
    end
    local kind, name = core.parse(inner)
    if kind ~= "domain" then
      return nil, "bad host in nexthop '" .. text .. "': " .. tostring(name)
    end
    return { name = name, mx = false, port = port, text = text }
  end
  local host, p = s:match("^([^:]*):([^:]*)$")
  if host then
    local why
    port, why = port_of(p)
    if not port then return nil, why .. " in nexthop '" .. text .. "'" end
  elseif s:find(":", 1, true) then
    return nil, "nexthop '" .. text .. "': an IPv6 address is written [ipv6:ADDRESS]"
  else
    host = s
  end
  if host:match("^[%d.]+$") then
    -- transport(5): "The [] form is required when you specify an IP
    -- address instead of a hostname."
    return nil, "nexthop '" .. text .. "': an IP address needs brackets ([" .. host .. "])"
  end
  local kind, name = core.parse(host)
  if kind ~= "domain" then
    return nil, "bad host in nexthop '" .. text .. "': " .. tostring(name)
  end
  return { name = name, mx = true, port = port, text = text }
end

-- A nexthop list (Postfix 3.5: separated by comma or whitespace).
local function parse_hops(s)
  local hops = {}
  for item in s:gmatch("[^,%s]+") do
    local h, why = parse_hop(item)
    if not h then return nil, why end
    hops[#hops + 1] = h
  end
  if #hops > HOPS_MAX then return nil, "more than " .. HOPS_MAX .. " nexthops" end
  return hops
end

--- parse_result(s) -> action | nil, why. A transport(5) result
-- "transport:nexthop" (RESULT FORMAT): { transport, nexthop, hops } with
-- hops nil for the recipient's own domain; or, for error(8)'s error and
-- retry services, { transport, nexthop, fail = { code, message,
-- enhanced } }.
function M.parse_result(s)
  if type(s) ~= "string" then return nil, "a route must be a string transport:nexthop" end
  s = trim(s)
  local transport, nexthop = s:match("^([^:]*):(.*)$")
  if not transport then transport, nexthop = s, "" end
  transport, nexthop = trim(transport), trim(nexthop)
  if transport:find("%s") then
    return nil, "bad transport name '" .. transport .. "'"
  end
  local t = lower(transport)
  if t == "error" or t == "retry" then
    -- error(8): "The reason may be prefixed with an RFC 3463-compatible
    -- detail code; if none is specified a default 4.0.0 or 5.0.0 code is
    -- used instead"; the service name (error or retry) decides whether
    -- the recipient bounces or is deferred.
    local code, text = nexthop:match("^([245]%.%d%d?%d?%.%d%d?%d?)%s*(.*)$")
    if not code then code, text = t == "error" and "5.0.0" or "4.0.0", nexthop end
    return {
      transport = transport, nexthop = nexthop,
      fail = {
        code = t == "error" and "REJECTED" or "DEFERRED",
        message = text ~= "" and text or nil,
        enhanced = code,
      },
    }
  end
  local action = { transport = transport ~= "" and transport or DEFAULT_TRANSPORT, nexthop = nexthop }
  if nexthop ~= "" then
    -- a null nexthop (transport(5)): the recipient domain, as without routes
    local hops, why = parse_hops(nexthop)
    if not hops then return nil, why end
    action.hops = hops
  end
  return action
end

-- A table key as transport(5) TABLE SEARCH ORDER lists them: "*",
-- ".domain", "domain", "user@domain", "user+ext@domain"; normalised like
-- a DNS name (lower case, no trailing dot). -> key | nil, why
local function norm_key(k)
  if type(k) ~= "string" then return nil, "a key must be a string" end
  if k == "*" then return k end
  local at = k:match("^.*()@")
  if at then
    local user, dom = k:sub(1, at - 1), k:sub(at + 1)
    if user == "" then
      return nil, "key '" .. k .. "': '@domain' is not a transport(5) key (write 'domain')"
    end
    dom = dom:gsub("%.$", "")
    local kind, d = core.parse(dom)
    if not kind then return nil, "key '" .. k .. "': " .. d end
    return lower(user) .. "@" .. d
  end
  local dot = k:sub(1, 1) == "."
  local kind, d = core.parse(dot and k:sub(2) or k)
  if not kind then return nil, "key '" .. k .. "': " .. d end
  if dot and kind == "literal" then return nil, "key '" .. k .. "': a literal has no subdomains" end
  return (dot and "." or "") .. d
end

local function check_opts(o, where)
  if o == nil then return {} end
  if type(o) ~= "table" then error(where .. ": options must be a table", 3) end
  local d = o.recipient_delimiter
  if d ~= nil and type(d) ~= "string" then
    error(where .. ": option 'recipient_delimiter': expected a string of delimiter characters", 3)
  end
  local p = o.parent_domain_matches_subdomains
  if p ~= nil and type(p) ~= "boolean" then
    error(where .. ": option 'parent_domain_matches_subdomains': expected a boolean", 3)
  end
  return o
end

local function new_routes()
  return setmetatable({
    map = {}, lines = {}, rules = {}, fallback = nil, hooks = {},
    -- Postfix 3.7 defaults: recipient_delimiter is empty;
    -- parent_domain_matches_subdomains does not list transport_maps, so
    -- ".domain" is needed to match subdomains.
    delimiter = "", parent_matches = false,
  }, Routes)
end

local function set_opts(r, o)
  if o.recipient_delimiter ~= nil then r.delimiter = o.recipient_delimiter end
  if o.parent_domain_matches_subdomains ~= nil then
    r.parent_matches = o.parent_domain_matches_subdomains
  end
end

--- routes.postfix(text [, opts]) -> routes. Parses a Postfix transport(5)
-- table: "pattern result" lines, '#' comment lines, blank lines, and
-- continuation lines (a line starting with whitespace continues the
-- logical line before it). opts: recipient_delimiter (default "", none),
-- parent_domain_matches_subdomains (default false: ".domain" matches
-- subdomains, "domain" only itself). A bad line raises an error naming
-- its number and what is wrong; a key given twice is an error too.
function M.postfix(text, opts)
  local where = "mxroute.routes.postfix"
  if type(text) ~= "string" then error(where .. ": text must be a string", 2) end
  opts = check_opts(opts, where)
  local r = new_routes()
  set_opts(r, opts)
  local logical = {} -- { line, text }
  local n = 0
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    raw = raw:gsub("\r$", "")
    -- TABLE FORMAT: blank lines and '#' comment lines are ignored
    local skip = raw:match("^%s*$") or raw:match("^%s*#")
    if not skip and raw:match("^%s") then
      local last = logical[#logical]
      if not last then
        error(("%s: line %d: continuation line (it starts with whitespace) with no line before it")
          :format(where, n), 2)
      end
      last.text = last.text .. " " .. trim(raw)
    elseif not skip then
      logical[#logical + 1] = { line = n, text = raw }
    end
  end
  for _, l in ipairs(logical) do
    local key, value = l.text:match("^(%S+)%s+(.-)%s*$")
    if not key or value == "" then
      error(("%s: line %d: '%s' has no result (expected: pattern transport:nexthop)")
        :format(where, l.line, trim(l.text)), 2)
    end
    local k, why = norm_key(key)
    if not k then error(("%s: line %d: %s"):format(where, l.line, why), 2) end
    local action
    action, why = M.parse_result(value)
    if not action then error(("%s: line %d: %s"):format(where, l.line, why), 2) end
    if r.map[k] then
      error(("%s: line %d: key '%s' is already given on line %d"):format(where, l.line, key, r.lines[k]), 2)
    end
    action.key = key
    r.map[k], r.lines[k] = action, l.line
  end
  return r
end

local function fallback_hops(v, where)
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then
    error(where .. ": field 'fallback': expected nexthops (a string or a list of strings)", 3)
  end
  local hops = {}
  for _, s in ipairs(v) do
    if type(s) ~= "string" then error(where .. ": field 'fallback': expected strings", 3) end
    local list, why = parse_hops(s)
    if not list then error(where .. ": field 'fallback': " .. why, 3) end
    for _, h in ipairs(list) do hops[#hops + 1] = h end
  end
  if #hops == 0 or #hops >= HOPS_MAX then
    error(where .. ": field 'fallback': expected 1 to " .. (HOPS_MAX - 1) .. " nexthops", 3)
  end
  return hops
end

--- routes.new(spec) -> routes. Lua rules with the same actions as a
-- transport(5) table:
--   { key = "example.com", route = "smtp:[relay.example.net]:587" }
--   { match = function(rcpt, call) ... end, route = "relay:[gw]" }
--   { match = function(rcpt, call) return "smtp:[x]" or nil end }
-- `match` rules are tried first, in order; a match returning a string
-- routes there, any other true value uses the rule's `route`. Then `key`
-- rules (and `map`: a { key = result } table or routes.postfix(...))
-- in transport(5) search order. Fields: fallback (nexthops, the
-- smtp_fallback_relay of Postfix), hooks (functions rewriting a finished
-- plan), recipient_delimiter, parent_domain_matches_subdomains.
function M.new(spec)
  local where = "mxroute.routes"
  if type(spec) ~= "table" then error(where .. ": expected a table of rules", 2) end
  if getmetatable(spec) == Routes then return spec end
  check_opts(spec, where)
  local r = new_routes()
  local known = {
    map = true, fallback = true, hooks = true, recipient_delimiter = true,
    parent_domain_matches_subdomains = true,
  }
  for k in pairs(spec) do
    if type(k) ~= "number" and not known[k] then
      error(where .. ": unknown field '" .. tostring(k) .. "'", 2)
    end
  end
  local function add(key, result, what)
    local k, why = norm_key(key)
    if not k then error(where .. ": " .. what .. ": " .. why, 3) end
    local action
    if type(result) == "table" and result.transport then
      action = result
    else
      action, why = M.parse_result(result)
      if not action then error(where .. ": " .. what .. ": " .. why, 3) end
    end
    if r.map[k] then error(where .. ": " .. what .. ": key '" .. key .. "' is given twice", 3) end
    local a = {}
    for f, v in pairs(action) do a[f] = v end
    a.key = key
    r.map[k] = a
  end
  local map = spec.map
  if getmetatable(map) == Routes then
    r.delimiter, r.parent_matches = map.delimiter, map.parent_matches
    for k, a in pairs(map.map) do add(k, a, "map") end
    for _, rule in ipairs(map.rules) do r.rules[#r.rules + 1] = rule end
    for _, h in ipairs(map.hooks) do r.hooks[#r.hooks + 1] = h end
    r.fallback = map.fallback
  elseif map ~= nil then
    if type(map) ~= "table" then error(where .. ": field 'map': expected a table or routes.postfix(...)", 2) end
    for k, v in pairs(map) do add(k, v, "map") end
  end
  set_opts(r, spec)
  for i, rule in ipairs(spec) do
    local what = "rule " .. i
    if type(rule) ~= "table" then error(where .. ": " .. what .. ": expected a table", 2) end
    if rule.match ~= nil then
      if type(rule.match) ~= "function" then error(where .. ": " .. what .. ": match must be a function", 2) end
      local action
      if rule.route ~= nil then
        local why
        action, why = M.parse_result(rule.route)
        if not action then error(where .. ": " .. what .. ": " .. why, 2) end
      end
      r.rules[#r.rules + 1] = { match = rule.match, action = action, name = rule.name or what }
    elseif rule.key ~= nil then
      add(rule.key, rule.route, what)
    else
      error(where .. ": " .. what .. ": expected a key or a match function", 2)
    end
  end
  if spec.fallback ~= nil then r.fallback = fallback_hops(spec.fallback, where) end
  if spec.hooks ~= nil then
    local hooks = spec.hooks
    if type(hooks) == "function" then hooks = { hooks } end
    if type(hooks) ~= "table" then error(where .. ": field 'hooks': expected a function or a list of functions", 2) end
    for i, h in ipairs(hooks) do
      if type(h) ~= "function" then error(where .. ": field 'hooks': hook " .. i .. " is not a function", 2) end
      r.hooks[#r.hooks + 1] = h
    end
  end
  return r
end

--- routes.check(v, where) -> routes | nil, message: the resolver option
-- `routes` (a routes object or a spec for routes.new), checked at
-- resolver{} time with a message naming the field.
function M.check(v, where)
  if getmetatable(v) == Routes then return v end
  if type(v) ~= "table" then
    return nil, where .. ": option 'routes': expected mxroute.routes.postfix(...), "
      .. "mxroute.routes.new{...} or a table of rules"
  end
  local ok, r = pcall(M.new, v)
  if not ok then
    return nil, where .. ": option 'routes': " .. (tostring(r):gsub("^[^:]*:%d+: ", ""):gsub("^mxroute%.routes: ", ""))
  end
  return r
end

--- routes.is(v) -> whether v is a routes object.
function M.is(v) return getmetatable(v) == Routes end

-- The recipient as match functions and the search see it.
local function recipient(input, delimiter)
  local at = input:match("^.*()@")
  local rcpt = { address = input }
  local dom = at and input:sub(at + 1) or input
  local kind, d = core.parse(dom)
  if not kind then return nil end -- invalid: the core says BADNAME
  rcpt.domain, rcpt.literal = d, kind == "literal"
  if at then
    local loc = lower(input:sub(1, at - 1))
    rcpt["local"] = loc
    rcpt.user = loc
    if delimiter ~= "" then
      -- recipient_delimiter: the first delimiter character (after the
      -- first octet) separates the extension
      for i = 2, #loc do
        if delimiter:find(loc:sub(i, i), 1, true) then
          rcpt.user, rcpt.extension = loc:sub(1, i - 1), loc:sub(i + 1)
          break
        end
      end
    end
  end
  return rcpt
end

-- transport(5) TABLE SEARCH ORDER: user+extension@domain, user@domain,
-- domain, then for each parent ".parent" (or "parent" when
-- parent_domain_matches_subdomains lists transport_maps), then "*".
function Routes:search(rcpt)
  local map, d = self.map, rcpt.domain
  local a
  if rcpt["local"] then
    if rcpt.extension then
      a = map[rcpt["local"] .. "@" .. d]
      if a then return a end
    end
    a = map[rcpt.user .. "@" .. d]
    if a then return a end
  end
  a = map[d]
  if a then return a end
  if not rcpt.literal then
    local name = d
    while true do
      local dot = name:find(".", 1, true)
      if not dot then break end
      name = name:sub(dot + 1)
      a = map[self.parent_matches and name or "." .. name]
      if a then return a end
    end
  end
  return map["*"]
end

--- r:lookup(input [, call]) -> action | nil | false, message. The action
-- for a recipient: match rules first, then the table; nil when nothing
-- matches; false and a message when a match function raised.
function Routes:lookup(input, call)
  local rcpt = recipient(input, self.delimiter)
  if not rcpt then return nil end
  call = call or {}
  for _, rule in ipairs(self.rules) do
    local ok, v = pcall(rule.match, rcpt, call)
    if not ok then return false, rule.name .. ": " .. tostring(v) end
    if type(v) == "string" then
      local action, why = M.parse_result(v)
      if not action then return false, rule.name .. ": " .. why end
      action.key = rule.name
      return action
    elseif v then
      if not rule.action then return false, rule.name .. ": matched but has no route" end
      local action = {}
      for f, x in pairs(rule.action) do action[f] = x end
      action.key = rule.name
      return action
    end
  end
  return self:search(rcpt)
end

local function copy_hops(hops)
  local out = {}
  for i, h in ipairs(hops) do out[i] = { name = h.name, mx = h.mx, port = h.port } end
  return out
end

-- Run the hooks on a finished plan (DESIGN 7): each may edit the plan in
-- place or return a new one; an error fails this plan only (HOOK).
local function run_hooks(hooks, plan, ctx)
  for i, hook in ipairs(hooks) do
    local ok, v = pcall(hook, plan, ctx)
    if not ok then
      return nil, ("routing hook %d failed: %s"):format(i, tostring(v)), "HOOK"
    end
    if type(v) == "table" then plan = v end
  end
  if type(plan.targets) ~= "table" or #plan.targets == 0 then
    return nil, tostring(plan.domain) .. ": every target was dropped by a routing hook", "NOHOSTS"
  end
  return plan
end

--- r:plan_args(input [, call]) -> route table for core.res, or nil for
-- an unrouted resolution.
function Routes:plan_args(input, call)
  local action, why = self:lookup(input, call)
  local hooks = self.hooks
  if action == nil and not self.fallback and #hooks == 0 then return nil end
  local route = action and {
    key = action.key, transport = action.transport, nexthop = action.nexthop,
  } or nil
  local args = {}
  if action == false then
    args.fail = { code = "HOOK", message = "routing rule failed: " .. why }
  elseif action and action.fail then
    args.fail = { code = action.fail.code, message = action.fail.message }
  else
    args.hops = action and action.hops and copy_hops(action.hops) or nil
    args.fallback = self.fallback and copy_hops(self.fallback) or nil
  end
  local enhanced = action and action.fail and action.fail.enhanced
  args.finish = function(plan, msg, code, info)
    if plan then
      plan.route = route
      if #hooks > 0 then
        local ctx = { input = input, route = route, call = call or {} }
        local before = plan
        plan, msg, code = run_hooks(hooks, plan, ctx)
        if not plan then
          info = { input = input, domain = before.domain, code = code,
                   skipped = before.skipped or {} }
        end
      end
    end
    if not plan and info then
      info.route = route
      if enhanced then info.enhanced = enhanced end
    end
    return plan, msg, code, info
  end
  return args
end

--- routes.res(input, o, routes [, call [, cache]]) -> the core resolution
-- (query) for input with planner options o under routes (nil: none),
-- call the per-call options (e.g. { sender = ... }) match functions and
-- hooks see, cache the resolver's RRset cache (DESIGN 8) or nil.
-- Every routed resolution is built here (mxroute.resolver makes a
-- resolution without routes or call options with core.res itself).
function M.res(input, o, routes, call, cache)
  if routes == nil then return core.res(input, o, nil, cache) end
  return core.res(input, o, routes:plan_args(input, call), cache)
end

M.HOPS_MAX = HOPS_MAX

return M
