--- mxroute: where to deliver mail for a domain (RFC 5321 5.1, RFC 7505).
--
-- The C core (`mxroute.core`) plans and resolves; this module validates
-- options, owns the resolver object and does the waiting, so that a lookup
-- suspends only the coroutine that asked (DESIGN 3-4).
local core = require "mxroute.core"

local M = {
  version = core.version,
  _VERSION = core.version,
  codes = core.codes, -- code -> class
}

-- A plan's lists (hosts, targets, skipped, a host's addrs) share one
-- metatable, so that JSON encoders give [] for an empty one: dkjson looks
-- for __jsontype = "array" in it; OpenResty's lua-cjson (2.1.0.6 and
-- later) for its own cjson.array_mt, by identity, so when that cjson is
-- installed its array_mt is the metatable, with __jsontype added.
do
  local ok, cjson = pcall(require, "cjson")
  if ok and type(cjson) == "table" and type(cjson.array_mt) == "table" then
    rawset(cjson.array_mt, "__jsontype", "array")
    core.array_mt(cjson.array_mt)
  end
end
--- The metatable of a plan's lists (see above); `setmetatable(t,
-- mxroute.array_mt)` marks a list of one's own the same way.
M.array_mt = core.array_mt()

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local setmetatable, getmetatable, next = setmetatable, getmetatable, next
local core_res = core.res

local options = require "mxroute.options"

local need_opt = options.need
local routes = require "mxroute.routes"
local iterate = require("mxroute.targets").iterate
local cqueues = require "mxroute.cqueues" -- never loads cqueues itself
M.routes = routes -- DESIGN 7: mxroute.routes.postfix(text), .new(spec)

local Resolver = {}
Resolver.__index = Resolver

-- Bookkeeping tables keyed by query are weak, so that a coroutine that is
-- never resumed again, and the query it waits for, can be collected (the
-- query's __gc then detaches it from the engine).
local WEAK_KEYS = { __mode = "k" }

--- mxroute.resolver(opts) -> resolver. Every field optional (DESIGN 3);
-- a bad field raises an error naming it.
function M.resolver(opts)
  local set = need_opt(options.resolver(opts, "mxroute.resolver"))
  opts = set.opts
  local wait = set.wait
  local cache, o, rt = set.cache, set.planner, set.routes
  local ok, eng = pcall(core.engine, set.engine)
  if not ok then
    error((tostring(eng):gsub("^mxroute:", "mxroute.resolver:")), 2)
  end
  return setmetatable({
    _eng = eng, _opts = o, _wait = wait, _routes = rt,
    _on_query = opts.on_query, -- called from step with each traced try
    _plans = { ok = 0, permanent = 0, temporary = 0, loop = 0, invalid = 0 },
    _counted = setmetatable({}, WEAK_KEYS), -- query -> true: done at submit
    _cache = cache and core.cache(cache) or nil, -- DESIGN 8
    _cb = {},      -- query -> callback (strong: the query must complete)
    _queue = {},   -- finished queries whose callbacks are still due
    _parked = setmetatable({}, WEAK_KEYS),    -- query -> its waiter record
    _progress = setmetatable({}, WEAK_KEYS),  -- query -> waiter wanting targets
    _unclaimed = setmetatable({}, WEAK_KEYS), -- query -> true: woken, not back yet
    _scheds = {},  -- schedulers used here that want to hear of close()
  }, Resolver)
end

local function check(self)
  if getmetatable(self) ~= Resolver then
    error("mxroute: expected a resolver", 3)
  end
  if not self._eng then error("mxroute: resolver is closed", 3) end
  return self._eng
end

local submit_scheduler -- below, with the schedulers

--- r:submit(input [, callback [, call]]) -> query. Starts a resolution
-- without waiting. callback(plan, message, code, query) runs from r:step
-- once the plan is complete. The query has done(), result() (plan | nil,
-- message, code, info) and cancel(). call: options of this call that
-- routing rules and hooks see, e.g. { sender = "a@example.org" }.
function Resolver:submit(input, callback, call)
  local eng = check(self)
  if type(input) ~= "string" then
    error("mxroute: submit: input must be a string", 2)
  end
  if callback ~= nil and type(callback) ~= "function" then
    error("mxroute: submit: callback must be a function", 2)
  end
  local q
  if call == nil and self._routes == nil then -- nobody sees call options
    q = core_res(input, self._opts, nil, self._cache)
  else
    call = need_opt(options.call(call, "mxroute: submit"))
    q = routes.res(input, self._opts, self._routes, call, self._cache)
  end
  eng:submit(q)
  if q:done() then -- no query needed (bad input, a literal, the cache):
    -- counted now, not by the step that reports it (r:stats())
    local class = q:class()
    self._plans[class] = self._plans[class] + 1
    self._counted[q] = true
  end
  if callback then
    self._cb[q] = callback
    -- under a scheduler (cqueues, luv) its loop drives the resolver until
    -- the callback has run
    local s = submit_scheduler(self)
    if s then
      if s.close then self._scheds[s] = true end
      s:submit(self, q)
    end
  end
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

-- Waiter record w of query q is ready: tell its scheduler. Runs from step
-- (after the C exchange has returned) or close, never from inside it.
local function wake(self, q, w)
  if w.ready then return end
  w.ready = true
  local s = w.sched
  if s.herd then self._unclaimed[q] = true end
  if s.wake then s:wake(self, w) end
end

--- r:step([timeout]) -> n. Processes ready I/O and timers; with a timeout
-- first waits up to that many seconds. Returns how many plans finished.
-- Wakes the coroutines whose plans are ready, then runs due callbacks.
function Resolver:step(timeout)
  local eng = check(self)
  if timeout ~= nil and type(timeout) ~= "number" then
    error("mxroute: step: timeout must be a number", 2)
  end
  if timeout and self._queue[1] then timeout = 0 end
  local n, done = eng:step(timeout or 0)
  local queue, cbs, parked = self._queue, self._cb, self._parked
  local plans, counted = self._plans, self._counted
  for i = 1, n do
    local q = done[i]
    if counted[q] then
      counted[q] = nil
    else
      local class = q:class()
      plans[class] = plans[class] + 1
    end
    if cbs[q] then queue[#queue + 1] = q end
    local w = parked[q]
    if w then wake(self, q, w) end
  end
  local progress = self._progress
  if next(progress) ~= nil then
    for q, w in pairs(progress) do
      if w.ready or q:ready() >= w.need then
        progress[q] = nil
        wake(self, q, w)
      end
    end
  end
  -- every waiter is woken before on_query runs: an error in it leaves
  -- the rest of the events (and the callbacks) for the next step
  local on_query = self._on_query
  if on_query then
    while true do
      local ev = eng:next_event()
      if not ev then break end
      on_query(ev)
    end
  end
  run_callbacks(self)
  return n
end

--- The pollable interface (cqueues convention): wait until r:pollfd() is
-- readable (r:events() is "r") or r:timeout() seconds have passed, then
-- call r:step(). timeout() is nil when nothing is in flight, 0 when there
-- is something to do at once.
function Resolver:pollfd() return check(self):pollfd() end
function Resolver:events() check(self) return "r" end
function Resolver:timeout()
  local eng = check(self)
  if self._queue[1] or next(self._unclaimed) ~= nil then return 0 end
  return eng:timeout()
end

--- r:pending() -> number of resolutions in flight.
function Resolver:pending() return check(self):pending() end

--- r:cache_stats() -> { hits, misses, entries, evictions, stale, inserts,
-- merged }: the cache's counters (all 0 but merged with `cache = false`).
-- hits and misses count RRset lookups (MX of a domain, A or AAAA of a
-- host), not plans; stale counts expired RRsets used after a failed
-- refresh; merged counts lookups that joined an identical one already in
-- flight (the exchange's, cache on or off).
function Resolver:cache_stats()
  local merged = check(self):stats().merged
  local st = self._cache and self._cache:stats()
    or { hits = 0, misses = 0, entries = 0, evictions = 0, stale = 0, inserts = 0 }
  st.merged = merged
  return st
end

--- r:flush([name]) -> n: drops the cached RRsets of name (MX, A, AAAA;
-- matched like DNS names), or every one; returns how many.
function Resolver:flush(name)
  check(self)
  if name ~= nil and type(name) ~= "string" then
    error("mxroute: flush: name must be a string", 2)
  end
  if not self._cache then return 0 end
  local ok, n = pcall(self._cache.flush, self._cache, name)
  if not ok then error(n, 2) end
  return n
end

--- r:stats() -> the exchange's counters since creation: queries (sent,
-- retries and TCP included), answers, timeouts, tcp, merged, dropped
-- (replies refused: wrong ID, question or socket), sockets (UDP sockets
-- opened), server_failures (a list, one count per nameserver), and plans
-- ({ ok, permanent, temporary, loop, invalid }: plans completed, by the
-- class of their result).
function Resolver:stats()
  local st = check(self):stats()
  local p = self._plans
  st.plans = { ok = p.ok, permanent = p.permanent, temporary = p.temporary,
               loop = p.loop, invalid = p.invalid }
  return st
end

--- r:closed() -> true once r:close() ran.
function Resolver:closed()
  if getmetatable(self) ~= Resolver then
    error("mxroute: expected a resolver", 2)
  end
  return self._eng == nil
end

---------------------------------------------------------------------------
-- Waiting (DESIGN 4; doc/async.md).
--
-- A waiting call (resolve, targets) parks a waiter record w for its query
-- q in r._parked and asks a scheduler to suspend it: sched:wait(r, w)
-- returns once w may be ready (a spurious return is fine: the caller
-- checks again). r:step marks w.ready when q is done (or, with w.need,
-- has that many final targets) and calls sched:wake(r, w) if there is
-- one. sched:close(r), if present, runs before r's descriptor is closed;
-- sched:submit(r, q), if present, when r:submit got a callback.
-- A scheduler with sched.yields suspends coroutines: a caller that cannot
-- yield waits in the blocking wait instead. The schedulers are plugins:
-- BLOCK, YIELD and the function scheduler below; mxroute.cqueues (used by
-- itself in cqueues threads) and mxroute.luv (given as `wait`).
-- A "herd" scheduler has no way to wake one coroutine: its waiters step
-- the resolver themselves, and r:timeout() is 0 while one of them was
-- woken by another's step and has not come back yet.

local function can_yield()
  if coroutine.isyieldable then return coroutine.isyieldable() end
  local co, main = coroutine.running()
  return co ~= nil and not main
end

-- Outside any scheduler: the blocking C wait on the epoll descriptor.
local BLOCK = {}
function BLOCK.wait(_, r)
  r:step(r._eng:timeout() or 0)
end

-- wait = "yield": hand the resolver (a pollable) to the loop that resumed
-- the coroutine; in a cqueues thread that is cqueues.poll(r).
local YIELD = { herd = true }
function YIELD.wait(_, r)
  if not cqueues.poll(r) then coroutine.yield(r) end
  if r._eng then r:step(0) end
end

-- wait = function(fd, events, timeout): the caller's loop suspends us.
local function function_scheduler(fn)
  return {
    herd = true,
    wait = function(_, r)
      fn(r._eng:pollfd(), "r", r:timeout())
      if r._eng then r:step(0) end
    end,
  }
end

-- The scheduler for a wait starting now.
local function scheduler(self)
  local w = self._wait
  local t = type(w)
  if t == "table" then
    if w.close then self._scheds[w] = true end
    return w
  elseif t == "function" then
    local s = self._fsched
    if not s then
      s = function_scheduler(w)
      self._fsched = s
    end
    return s
  elseif w == "yield" then
    if can_yield() then return YIELD end
  elseif w ~= "block" then
    local s = cqueues.waiter()
    if s then
      self._scheds[s] = true
      return s
    end
  end
  return BLOCK
end

-- The scheduler object that drives r for a callback given to submit now,
-- if there is one.
function submit_scheduler(self)
  local w = self._wait
  if type(w) == "table" then
    return w.submit and w
  elseif w == nil then
    local s = scheduler(self)
    return s ~= BLOCK and s or nil
  end
  return nil
end

local function satisfied(q, need)
  return q:done() or (need ~= nil and q:ready() >= need)
end

-- Wait until q is done, or (with need) has at least need final targets,
-- or the resolver is closed (which completes q with CANCELLED).
local function await(self, q, need)
  while self._eng and not satisfied(q, need) do
    if self:timeout() == nil then
      error("mxroute: internal error: waiting with nothing in flight", 3)
    end
    local sched = scheduler(self)
    -- a scheduler that suspends coroutines cannot suspend this caller
    if sched.yields and not can_yield() then sched = BLOCK end
    local w = { need = need, ready = false, sched = sched }
    self._parked[q] = w
    if need then self._progress[q] = w end
    local ok, err = pcall(sched.wait, sched, self, w)
    self._parked[q], self._progress[q], self._unclaimed[q] = nil, nil, nil
    if not ok then error(err, 0) end
  end
end

--- r:resolve(input [, call]) -> plan | nil, message, code, info. Waits
-- through the resolver's waiter; suspends only the calling coroutine.
-- call: options routing rules and hooks see ({ sender = ... }).
function Resolver:resolve(input, call)
  check(self)
  if type(input) ~= "string" then
    error("mxroute: resolve: input must be a string", 2)
  end
  if call ~= nil then call = need_opt(options.call(call, "mxroute: resolve")) end
  local q = self:submit(input, nil, call)
  await(self, q)
  return q:result()
end

-- The targets() driver of a resolver (mxroute.targets): waits with a
-- need, the next target's index.
local TargetsDriver = {}
TargetsDriver.__index = TargetsDriver

function TargetsDriver:over(q)
  return self.r._eng == nil or q:done()
end

function TargetsDriver:wait(q, need)
  await(self.r, q, need)
end

function TargetsDriver:leave(q, cancel)
  if not cancel then return end
  q:cancel()
  local r = self.r
  local w = r._parked[q] -- another coroutine iterating this state
  if w then wake(r, q, w) end
end

--- r:targets(input) -> iterator, state, nil, state. A generic-for
-- iterator over the targets in delivery order; each arrives as soon as
-- its preference level is final, while later levels are still resolving.
-- When the loop ends, state.plan is the plan, or state.message and
-- state.code (and state.info) tell why there is none. Breaking out of
-- the loop cancels the rest on Lua 5.4 (the state is the loop's closing
-- value); elsewhere call state:close() or let the state be collected.
function Resolver:targets(input, call)
  check(self)
  if type(input) ~= "string" then
    error("mxroute: targets: input must be a string", 2)
  end
  if call ~= nil then call = need_opt(options.call(call, "mxroute: targets")) end
  local q = self:submit(input, nil, call)
  local d = self._targets
  if not d then
    d = setmetatable({ r = self }, TargetsDriver)
    self._targets = d
  end
  return iterate(q, d)
end

--- r:close() cancels every pending query (CANCELLED): waiting coroutines
-- wake up with that result and due callbacks run with it. Idempotent;
-- also __close and (through the engine) __gc.
function Resolver:close()
  local eng = self._eng
  if not eng then return end
  -- stop every watcher of the descriptor before it is closed
  for s in pairs(self._scheds) do s:close(self) end
  cqueues.forget(eng:pollfd())
  self._eng = nil
  eng:close()
  for q, w in pairs(self._parked) do wake(self, q, w) end
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

--- mxroute.resolve(input [, opts [, call]]) -> plan | nil, message,
-- code, info. One shot: without opts on a shared default resolver,
-- otherwise on a resolver made (and closed) for the call (opts.routes
-- included); call as for r:resolve.
local default
function M.resolve(input, opts, call)
  if opts == nil then
    default = default or M.resolver()
    return default:resolve(input, call)
  end
  local r = M.resolver(opts)
  local res = table.pack and table.pack(r:resolve(input, call))
    or { n = 4, r:resolve(input, call) }
  r:close()
  return (table.unpack or unpack)(res, 1, res.n)
end

--- mxroute.plan(records [, opts]) -> plan | nil, message, code, info.
-- The pure planner, no DNS (DESIGN 3).
function M.plan(records, opts)
  if type(records) ~= "table" then
    error("mxroute.plan: records must be a table", 2)
  end
  local o = need_opt(options.plan(opts, "mxroute.plan"))
  -- errors about the records are raised at the caller's line
  local ok, plan, msg, code, info = pcall(core.plan, records, o)
  if not ok then error(plan, 2) end
  return plan, msg, code, info
end

--- mxroute.class(code) -> "permanent" | "temporary" | "loop" | "invalid".
function M.class(code)
  return (need_opt(options.class(code, "mxroute.class"))) -- not a tail call: the level counts
end

return M
