--- mxroute.cqueues: the scheduler for lookups made in cqueues threads.
--
-- mxroute uses it by itself (no `wait` option needed) when the caller is a
-- thread of a cqueues controller; see doc/async.md. This module never
-- loads cqueues: it only uses the cqueues module the program has loaded,
-- so `require "mxroute"` stays free of it. Everything mxroute knows about
-- cqueues is here; the resolver sees only the scheduler protocol
-- (wait/wake/submit/close, doc/async.md "Scheduler objects").
local M = {}

local type, pairs, pcall, error = type, pairs, pcall, error

-- The cqueues module, when the caller is a thread of a cqueues controller
-- (not a coroutine nested in one: its resumer would get cqueues' polls).
local function current()
  local cq = package.loaded.cqueues
  if type(cq) ~= "table" or type(cq.running) ~= "function" then return nil end
  local ctl, main = cq.running()
  if ctl and main then return cq end
  return nil
end
M.current = current

--- mxroute_cqueues.poll(r) -> true if the caller is a cqueues thread and
-- has waited in cqueues.poll(r) (cqueues' way to yield a pollable), else
-- false: the `wait = "yield"` protocol then yields r itself.
function M.poll(r)
  local cq = current()
  if not cq then return false end
  cq.poll(r)
  return true
end

--- mxroute_cqueues.forget(fd): descriptor fd is about to be closed; tell
-- cqueues (when loaded) to drop any poll on it, so that no controller
-- waits on a closed, possibly reused, descriptor.
function M.forget(fd)
  local cq = package.loaded.cqueues
  if type(cq) == "table" and type(cq.cancel) == "function" then
    pcall(cq.cancel, fd)
  end
end

-- The scheduler for one cqueues module. One driver thread per resolver
-- and controller polls the resolver and steps it; each waiting thread
-- sleeps on its own condition variable, signalled when its plan is ready,
-- so it wakes only for its own plan. The driver ends when nobody waits
-- and nothing is in flight (submit callbacks run from it too).
local function new_scheduler(cq)
  local condition = require "cqueues.condition"
  -- resolver -> { controller -> driver { n, cond, waiting = { w -> true } } }
  -- (weak: a driver thread holds its resolver while it runs)
  local drivers = setmetatable({}, { __mode = "k" })
  local S = { yields = true }

  local function busy(r, d)
    return not r:closed() and (d.n > 0 or r:timeout() ~= nil)
  end

  local function drop(r, ctl, d)
    local by = drivers[r]
    if by and by[ctl] == d then by[ctl] = nil end
  end

  local function drive(r, d, ctl)
    while busy(r, d) do
      cq.poll(r, d.cond)
      if busy(r, d) then
        local ok, err = pcall(r.step, r, 0)
        if not ok then
          -- a callback raised: let the waiters start another driver
          drop(r, ctl, d)
          for w in pairs(d.waiting) do w.cond:signal() end
          error(err, 0)
        end
      end
    end
    drop(r, ctl, d)
  end

  local function driver(r)
    local ctl = cq.running()
    local by = drivers[r]
    if not by then
      by = setmetatable({}, { __mode = "k" })
      drivers[r] = by
    end
    local d = by[ctl]
    if not d then
      d = { n = 0, cond = condition.new(), waiting = {} }
      by[ctl] = d
      ctl:wrap(drive, r, d, ctl)
    end
    return d
  end

  -- condition variables of waits that are over, for the next ones
  local spare, nspare = {}, 0

  function S.wait(_, r, w)
    local d = driver(r)
    local cond = spare[nspare]
    if cond then
      spare[nspare], nspare = nil, nspare - 1
    else
      cond = condition.new()
    end
    w.cond = cond
    d.n, d.waiting[w] = d.n + 1, true
    cq.poll(cond)
    -- a wake from now on finds no cond: the next waiter on it hears
    -- nothing of this one
    w.cond = nil
    d.n, d.waiting[w] = d.n - 1, nil
    if d.n == 0 then d.cond:signal() end
    nspare = nspare + 1
    spare[nspare] = cond
  end

  function S.wake(_, _, w)
    if w.cond then w.cond:signal() end
  end

  function S.submit(_, r) driver(r) end

  function S.close(_, r)
    local by = drivers[r]
    if not by then return end
    for _, d in pairs(by) do d.cond:signal() end
  end

  return S
end

local cq_module, cq_sched

--- mxroute_cqueues.waiter() -> the scheduler object for a wait starting
-- now in a cqueues thread, or nil when the caller is not one.
function M.waiter()
  local cq = current()
  if not cq then return nil end
  if cq_module ~= cq then cq_module, cq_sched = cq, new_scheduler(cq) end
  return cq_sched
end

return M
