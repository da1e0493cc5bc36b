--- mxroute.luv: mxroute lookups in coroutines under a libuv loop (luv).
--
--   local uv = require "luv"
--   local mxluv = require "mxroute.luv"
--   local r = mxluv.resolver({ nameservers = { "127.0.0.1:53" } }, uv)
--   coroutine.wrap(function()
--     for t in r:targets("example.com") do print(t.host, t.addr) end
--   end)()
--   uv.run()
--
-- A lookup made in a coroutine suspends that coroutine only; the loop
-- keeps running its other handles. Per resolver in use, one uv poll handle
-- watches the resolver's descriptor and one timer its query deadlines; they
-- step the resolver and resume exactly the coroutines whose plans are
-- ready, and run the callbacks of r:submit(input, callback). Both handles
-- exist only while some coroutine waits or something is in flight, so
-- uv.run() returns once every lookup is done. Outside a coroutine (e.g. straight in
-- a luv callback) a lookup blocks the thread instead. See doc/async.md.
local M = {}

local ceil = math.ceil
local resume, running, yield = coroutine.resume, coroutine.running, coroutine.yield

-- libuv timers count whole milliseconds: round up, so that a deadline
-- due in 0.4 ms does not become a busy loop of 0 ms timers.
local function ms(t)
  if t <= 0 then return 0 end
  return ceil(t * 1000)
end

--- mxroute_luv.waiter([uv [, opts]]) -> scheduler, the value of the
-- resolver option `wait`. uv is the luv module (default: require "luv").
-- opts.on_error(err): called when a resumed coroutine raises or a submit
-- callback raises during a step run by this scheduler; by default the
-- error is raised from the luv callback (luv then reports it and exits,
-- as for any error in a callback).
function M.waiter(uv, opts)
  if uv == nil then uv = require "luv" end
  if type(uv) ~= "table" or type(uv.new_poll) ~= "function" or type(uv.new_timer) ~= "function" then
    error("mxroute.luv.waiter: expected the luv module", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("mxroute.luv.waiter: options must be a table", 2)
  end
  local on_error = opts and opts.on_error
  if on_error ~= nil and type(on_error) ~= "function" then
    error("mxroute.luv.waiter: option 'on_error': expected a function", 2)
  end

  -- resolver -> driver { r, poll, timer, parked = { w -> coroutine },
  -- n = #parked, ready = { w... }, busy, closed }. Strong: an active
  -- driver holds its resolver, and is removed when it stops.
  local drivers = {}
  -- yields: a caller that cannot yield blocks instead (mxroute does that)
  local S = { yields = true }

  local function report(err)
    if on_error then on_error(err) else error(err, 0) end
  end

  local service

  -- Stop and close the handles (before the descriptor goes away, or when
  -- nobody waits: an open luv handle is anchored and would keep r alive).
  local function stop(d)
    if d.closed then return end
    d.closed = true
    if drivers[d.r] == d then drivers[d.r] = nil end
    d.poll:stop()
    d.poll:close()
    d.timer:stop()
    d.timer:close()
  end

  -- After a step: stop when nobody waits and nothing is in flight, else
  -- arm the timer for the resolver's next timer (or at once for
  -- coroutines due to resume).
  local function rearm(d)
    if d.closed then return end
    if d.r:closed() then return stop(d) end
    local t = d.r:timeout()
    if d.n == 0 and t == nil then return stop(d) end
    if d.ready[1] then t = 0 end
    if t then d.timer:start(ms(t), 0, d.tick) else d.timer:stop() end
  end

  -- Resume the coroutines whose plans are ready, in the order they got
  -- ready. Returns the first error one of them raised.
  local function flush(d)
    local first
    d.flushing = true
    while d.ready[1] do
      local w = table.remove(d.ready, 1)
      local co = d.parked[w]
      if co then
        d.parked[w], d.n = nil, d.n - 1
        local ok, err = resume(co)
        if not ok and first == nil then first = debug.traceback(co, tostring(err)) end
      end
    end
    d.flushing = false
    return first
  end

  -- The poll or timer callback: step, resume, re-arm, report.
  function service(d)
    local ok, err = true, nil
    if not d.r:closed() then
      d.busy = true
      ok, err = pcall(d.r.step, d.r, 0)
      d.busy = false
    end
    local cerr = flush(d)
    rearm(d)
    if not ok then report(err) end
    if cerr then report(cerr) end
  end

  local function start(r)
    local poll, err = uv.new_poll(r:pollfd())
    if not poll then error("mxroute.luv: cannot watch the resolver: " .. tostring(err), 0) end
    local d = { r = r, poll = poll, timer = uv.new_timer(), parked = {}, n = 0, ready = {} }
    d.tick = function() service(d) end
    local ok, perr = poll:start("r", d.tick)
    if not ok then
      poll:close()
      d.timer:close()
      error("mxroute.luv: cannot watch the resolver: " .. tostring(perr), 0)
    end
    drivers[r] = d
    return d
  end

  --- Scheduler protocol (mxroute): suspend the calling coroutine until
  -- its waiter record w is woken.
  function S.wait(_, r, w)
    local d = drivers[r] or start(r)
    d.parked[w], d.n = running(), d.n + 1
    rearm(d)
    yield()
    if d.parked[w] then -- resumed by someone else: no longer ours
      d.parked[w], d.n = nil, d.n - 1
    end
    if d.n == 0 and not d.flushing then rearm(d) end
  end

  --- r:submit got a callback: drive r from the loop until it has run
  -- (and as long as anything else is in flight).
  function S.submit(_, r)
    local d = drivers[r] or start(r)
    if not (d.busy or d.flushing) then rearm(d) end
  end

  --- w is ready: resume its coroutine from the loop, outside r:step.
  function S.wake(_, r, w)
    local d = drivers[r]
    if not d or not d.parked[w] then return end
    d.ready[#d.ready + 1] = w
    if not (d.busy or d.flushing or d.closed) then d.timer:start(0, 0, d.tick) end
  end

  --- r is closing: stop watching its descriptor now, and resume its
  -- waiting coroutines from the loop once close() has returned (they
  -- then see CANCELLED).
  function S.close(_, r)
    local d = drivers[r]
    if not d then return end
    stop(d)
    local cos = {}
    for _, w in ipairs(d.ready) do
      if d.parked[w] then cos[#cos + 1] = d.parked[w]; d.parked[w] = nil end
    end
    for _, co in pairs(d.parked) do cos[#cos + 1] = co end
    d.parked, d.ready, d.n = {}, {}, 0
    if cos[1] then
      local t = uv.new_timer()
      t:start(0, 0, function()
        t:close()
        local first
        for _, co in ipairs(cos) do
          local ok, err = resume(co)
          if not ok and first == nil then first = debug.traceback(co, tostring(err)) end
        end
        if first then report(first) end
      end)
    end
  end

  return S
end

--- mxroute_luv.resolver([opts [, uv]]) -> mxroute.resolver(opts) that
-- waits through mxroute_luv.waiter(uv).
function M.resolver(opts, uv)
  if opts ~= nil and type(opts) ~= "table" then
    error("mxroute.luv.resolver: options must be a table", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.wait ~= nil then
    error("mxroute.luv.resolver: option 'wait' is set by mxroute.luv", 2)
  end
  o.wait = M.waiter(uv)
  return require("mxroute").resolver(o)
end

return M
