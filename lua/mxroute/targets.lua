--- mxroute.targets: the iterator of r:targets(), shared by mxroute and
-- mxroute.ngx. It hands out the targets of a query q as soon as their
-- preference level is final (q:ready(), q:target(i)) and leaves the
-- waiting to a driver, the transport's part:
--
--   driver:over(q)          true once nothing more can come for q (it is
--                           done, or cannot be waited for): its result is
--                           read now
--   driver:wait(q, need)    returns once q may be over or have `need` final
--                           targets (returning early is fine: the iterator
--                           checks again); an error raised here closes
--                           the iteration and goes on to the caller
--   driver:leave(q, cancel) the iteration ends: its result was read
--                           (cancel false), or it was closed early
--                           (cancel true: stop q's lookups still in
--                           flight and wake another thread waiting for q)
--
-- The state (the loop's second and fourth value) ends with state.plan,
-- or state.message, state.code and state.info; state.closed when closed
-- early. README "r:targets" is the contract.
local M = {}

local setmetatable, pcall, error = setmetatable, pcall, error

local State = {}
State.__index = State

--- st:close() ends the iteration early and cancels the lookups still in
-- flight. Idempotent; also the state's __close (Lua 5.4).
function State:close()
  if self.finished then return end
  self.finished, self.closed = true, true
  self._driver:leave(self.query, true)
end
State.__close = State.close

-- The query is over: the loop ends with its plan, or nil, message, code.
local function finish(st, q)
  st.finished = true
  st._driver:leave(q, false)
  local plan, msg, code, info = q:result()
  if plan then
    st.plan = plan
    return nil
  end
  st.message, st.code, st.info = msg, code, info
  return nil, msg, code
end

-- The generic-for iterator: the next target once it is final.
local function next_target(st)
  if st.finished then return nil end
  local q, d, i = st.query, st._driver, st.n + 1
  while q:ready() < i do
    if d:over(q) then return finish(st, q) end
    local ok, err = pcall(d.wait, d, q, i)
    if not ok then
      State.close(st) -- as leaving the loop with the error does on Lua 5.4
      error(err, 0)
    end
    if st.finished then return nil end -- closed while waiting
  end
  st.n = i
  return q:target(i)
end

--- targets.iterate(q, driver) -> iterator, state, nil, state: the values
-- of r:targets() for query q.
function M.iterate(q, driver)
  local st = setmetatable({ query = q, n = 0, finished = false, _driver = driver }, State)
  return next_target, st, nil, st
end

return M
