--- mxroute: where to deliver mail for a domain (RFC 5321 5.1, RFC 7505).
--
-- The C core (`mxroute.core`) plans and resolves; this module validates
-- options, owns the resolver object and does the waiting, so that a lookup
-- suspends only the coroutine that asked (DESIGN 3-4).
local core = require "mxroute.core"

local M = {
  version = core.version,
  codes = core.codes, -- code -> class
}

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local floor = math.floor

-- Fields the planner understands (validated in C, names checked here).
local PLAN_FIELDS = {
  self = true, family = true, prefer = true, seed = true,
  allow_mx_to_ip = true, ignore_targets = true, max_hosts = true,
  max_addrs = true,
}

-- Resolver-only fields.
local RESOLVER_FIELDS = {
  nameservers = true, timeout = true, tries = true, wait = true,
}

local function check_fields(opts, where, allowed, also)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(where .. ": options must be a table", 3)
  end
  for k in pairs(opts) do
    if not (allowed[k] or (also and also[k])) then
      error(where .. ": unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  return opts
end

local function planner_opts(opts, where)
  local ok, o = pcall(core.opts, opts)
  if not ok then
    error((tostring(o):gsub("^mxroute:", where .. ":")), 3)
  end
  return o
end

-- "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53", "2001:db8::1"
-- -> the c-ares form "ip:port" / "[ip6]:port", or nil, why.
local function nameserver(s)
  if type(s) ~= "string" then return nil, "expected a string" end
  local ip, port = s:match("^(%d+%.%d+%.%d+%.%d+):?(%d*)$")
  if ip then
    for o in ip:gmatch("%d+") do
      if #o > 3 or tonumber(o) > 255 then return nil, "bad IPv4 address" end
    end
  else
    ip, port = s:match("^%[([%x:%.]+)%]:?(%d*)$")
    if not ip and s:find(":", 1, true) and s:match("^[%x:%.]+$") then
      ip, port = s, ""
    end
    if not ip or not ip:find(":", 1, true) then
      return nil, "expected IP[:PORT]"
    end
    ip = "[" .. ip .. "]"
  end
  if port == "" then port = "53" end
  local p = tonumber(port)
  if not p or p < 1 or p > 65535 then return nil, "bad port" end
  return ip .. ":" .. p
end

local Resolver = {}
Resolver.__index = Resolver

--- mxroute.resolver(opts) -> resolver. Every field optional (DESIGN 3);
-- a bad field raises an error naming it.
function M.resolver(opts)
  opts = check_fields(opts, "mxroute.resolver", PLAN_FIELDS, RESOLVER_FIELDS)
  local cfg = {}
  if opts.nameservers ~= nil then
    local ns = opts.nameservers
    if type(ns) == "string" then ns = { ns } end
    if type(ns) ~= "table" or #ns == 0 then
      error("mxroute.resolver: option 'nameservers': expected a non-empty list of IP[:PORT]", 2)
    end
    local list = {}
    for i, s in ipairs(ns) do
      local v, why = nameserver(s)
      if not v then
        error(("mxroute.resolver: option 'nameservers': '%s' %s"):format(tostring(s), why), 2)
      end
      list[i] = v
    end
    cfg.servers = table.concat(list, ",")
  end
  if opts.timeout ~= nil then
    local t = opts.timeout
    if type(t) ~= "number" or t ~= t or t <= 0 or t > 3600 then
      error("mxroute.resolver: option 'timeout': expected seconds > 0", 2)
    end
    cfg.timeout_ms = math.max(1, floor(t * 1000 + 0.5))
  end
  if opts.tries ~= nil then
    local n = opts.tries
    if type(n) ~= "number" or n ~= floor(n) or n < 1 or n > 20 then
      error("mxroute.resolver: option 'tries': expected an integer 1..20", 2)
    end
    cfg.tries = n
  end
  local wait = opts.wait
  if wait ~= nil and wait ~= "yield" and wait ~= "block" and type(wait) ~= "function" then
    error("mxroute.resolver: option 'wait': expected \"yield\", \"block\" or a function", 2)
  end
  local o = planner_opts(opts, "mxroute.resolver")
  local ok, eng = pcall(core.engine, cfg)
  if not ok then
    error((tostring(eng):gsub("^mxroute:", "mxroute.resolver:")), 2)
  end
  return setmetatable({
    _eng = eng, _opts = o, _wait = wait,
    _cb = {},      -- query -> callback (strong: the query must complete)
    _queue = {},   -- finished queries whose callbacks are still due
  }, Resolver)
end

local function check(self)
  if getmetatable(self) ~= Resolver then
    error("mxroute: expected a resolver", 3)
  end
  if not self._eng then error("mxroute: resolver is closed", 3) end
  return self._eng
end

--- r:submit(input [, callback]) -> query. Starts a resolution without
-- waiting. callback(plan, message, code, query) runs from r:step once the
-- plan is complete.
function Resolver:submit(input, callback)
  local eng = check(self)
  if type(input) ~= "string" then
    error("mxroute: submit: input must be a string", 2)
  end
  if callback ~= nil and type(callback) ~= "function" then
    error("mxroute: submit: callback must be a function", 2)
  end
  local q = core.res(input, self._opts)
  if callback then self._cb[q] = callback end
  eng:submit(q)
  return q
end

-- Run due callbacks one at a time, so that an error in one leaves the
-- others queued for the next step.
local function run_callbacks(self)
  local queue = self._queue
  while queue[1] do
    local q = table.remove(queue, 1)
    local cb = self._cb[q]
    self._cb[q] = nil
    if cb then
      local plan, msg, code = q:result()
      cb(plan, msg, code, q)
    end
  end
end

--- r:step([timeout]) -> n. Processes ready I/O and timers; with a timeout
-- first waits up to that many seconds. Returns how many plans finished.
function Resolver:step(timeout)
  local eng = check(self)
  if timeout ~= nil and type(timeout) ~= "number" then
    error("mxroute: step: timeout must be a number", 2)
  end
  if timeout and self._queue[1] then timeout = 0 end
  local n, done = eng:step(timeout or 0)
  local queue, cbs = self._queue, self._cb
  for i = 1, n do
    if cbs[done[i]] then queue[#queue + 1] = done[i] end
  end
  run_callbacks(self)
  return n
end

--- The pollable interface (cqueues convention).
function Resolver:pollfd() return check(self):pollfd() end
function Resolver:events() check(self) return "r" end
function Resolver:timeout()
  local eng = check(self)
  if self._queue[1] then return 0 end
  return eng:timeout()
end

--- r:pending() -> number of resolutions in flight.
function Resolver:pending() return check(self):pending() end

local function in_cqueues()
  local cq = package.loaded.cqueues
  return cq and cq.running and cq.running() and cq
end

local function can_yield()
  if coroutine.isyieldable then return coroutine.isyieldable() end
  local co, main = coroutine.running()
  return co ~= nil and not main
end

-- Wait once for the resolver's I/O or timer, the way this context wants,
-- then process what is ready.
local function wait_once(self)
  local eng = self._eng
  local t = self:timeout()
  if t == nil then
    -- nothing in flight and nothing due: a query that cannot progress
    error("mxroute: internal error: waiting with nothing in flight", 3)
  end
  local w = self._wait
  if type(w) == "function" then
    w(eng:pollfd(), "r", t)
  elseif w == "yield" and can_yield() then
    coroutine.yield(self)
  elseif w ~= "block" and in_cqueues() then
    in_cqueues().poll(self, t)
  else
    return self:step(t)
  end
  if self._eng then return self:step(0) end
end
M._wait_once = wait_once

--- r:resolve(input) -> plan | nil, message, code, info. Waits through the
-- resolver's waiter; suspends only the calling coroutine.
function Resolver:resolve(input)
  check(self)
  if type(input) ~= "string" then
    error("mxroute: resolve: input must be a string", 2)
  end
  local q = self:submit(input)
  while not q:done() do
    if not self._eng then break end
    wait_once(self)
  end
  return q:result()
end

local Targets = {}
Targets.__index = Targets
Targets.__close = function(st) st:close() end
--- st:close() cancels the rest of a targets() iteration.
function Targets:close()
  if not self.finished then
    self.finished = true
    self.query:cancel()
  end
end

--- r:targets(input) -> iterator, state, nil, state. Yields targets in
-- delivery order as soon as their preference level is final. On failure
-- the loop ends and state.message / state.code tell why.
function Resolver:targets(input)
  check(self)
  if type(input) ~= "string" then
    error("mxroute: targets: input must be a string", 2)
  end
  local q = self:submit(input)
  local st = setmetatable({ query = q, n = 0, finished = false }, Targets)
  local function iter(s)
    if s.finished then return nil end
    local i = s.n + 1
    while true do
      if q:ready() >= i then
        s.n = i
        return q:target(i)
      end
      if q:done() then
        s.finished = true
        local plan, msg, code = q:result()
        if not plan then s.message, s.code = msg, code end
        s.plan = plan
        return nil
      end
      if not self._eng then
        s.finished = true
        s.message, s.code = "resolver closed", "CANCELLED"
        return nil
      end
      wait_once(self)
    end
  end
  return iter, st, nil, st
end

--- r:close() cancels every pending query (CANCELLED) and runs the due
-- callbacks with that result. Idempotent.
function Resolver:close()
  local eng = self._eng
  if not eng then return end
  self._eng = nil
  eng:close()
  local pending = {}
  for q in pairs(self._cb) do pending[#pending + 1] = q end
  self._queue = {}
  local first_err
  for _, q in ipairs(pending) do
    local cb = self._cb[q]
    self._cb[q] = nil
    local plan, msg, code = q:result()
    local ok, err = pcall(cb, plan, msg, code, q)
    if not ok and first_err == nil then first_err = err end
  end
  if first_err ~= nil then error(first_err, 0) end
end
Resolver.__close = Resolver.close
Resolver.__gc = function(self) if self._eng then self._eng:close() end end

--- mxroute.resolve(input [, opts]) -> plan | nil, message, code, info.
-- One shot: without opts on a shared default resolver, otherwise on a
-- resolver made (and closed) for the call.
local default
function M.resolve(input, opts)
  if opts == nil then
    default = default or M.resolver()
    return default:resolve(input)
  end
  local r = M.resolver(opts)
  local res = table.pack and table.pack(r:resolve(input))
    or { n = 4, r:resolve(input) }
  r:close()
  return (table.unpack or unpack)(res, 1, res.n)
end

--- mxroute.plan(records [, opts]) -> plan | nil, message, code, info.
-- The pure planner, no DNS (DESIGN 3).
function M.plan(records, opts)
  if type(records) ~= "table" then
    error("mxroute.plan: records must be a table", 2)
  end
  opts = check_fields(opts, "mxroute.plan", PLAN_FIELDS)
  return core.plan(records, planner_opts(opts, "mxroute.plan"))
end

--- mxroute.class(code) -> "permanent" | "temporary" | "loop" | "invalid".
function M.class(code)
  if type(code) ~= "string" or not core.codes[code] then
    error("mxroute.class: unknown code '" .. tostring(code) .. "'", 2)
  end
  return core.codes[code]
end

return M
