--- Start and stop the fault DNS server (spec/support/faultd.lua) from specs.
--
--   local fault = require "support.fault"
--   local f = fault.start { ["sf.test"] = { rcode = "SERVFAIL" } }
--   -- f.host, f.port, f.addr ("127.0.0.1:PORT")
--   -- f.log(), f.queries(filter), f.replies(filter), f.wait(filter, n, s),
--   -- f.count(name, qtype, from)
--   f.stop()
--
-- Works under Lua 5.4 and LuaJIT.  See spec/support/README.md.
local uv = require "luv"
local cjson = require "cjson"
local util = require "support.util"

local M = {}

--- Path of the server program.
M.program = util.dir .. "/faultd.lua"

--- The interpreter the server runs under: $MXR_LUA, else the one running
-- this code (lua5.4 or luajit).
M.interpreter = util.interpreter

-- Process handles by pid, held here until the exit is seen, so that a
-- server object collected before its process was reaped leaves a handle
-- that the next start or stop_all can reap with.
local handles = {}

-- Let libuv collect children that have exited (outside uv.run only).
local function reap_exited()
  if uv.loop_mode() ~= nil then return end
  local any = false
  for _, proc in pairs(handles) do
    if not proc:is_closing() then proc:ref(); any = true end
  end
  if not any then return end
  uv.run("nowait")
  for _, proc in pairs(handles) do
    if not proc:is_closing() then proc:unref() end
  end
end

-- servers started and not yet stopped, by pid; weak, so that a server
-- object nobody holds is collected and its finalizer stops the process
local live = setmetatable({}, { __mode = "v" })

-- Lua source for a plain value; raises on functions and other
-- non-serialisable values.
local function serialize(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("fault.start: rules hold a non-finite number", 0)
    elseif v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      out[#out + 1] = string.format("%d", v)
    else
      out[#out + 1] = string.format("%.17g", v)
    end
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) < type(b)
    end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = "["
      serialize(k, out)
      out[#out + 1] = "]="
      serialize(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "function" then
    error("fault.start: rules holding functions (raw = …) must be given as the path of a Lua file", 0)
  else
    error("fault.start: rules hold a " .. t, 0)
  end
end

--- Lua source of a rules table (no functions), as faultd reads it.
function M.serialize(rules)
  local out = { "return " }
  serialize(rules, out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

-- Does `entry` pass `filter`?  nil: all; string: that name; table:
-- every field equal (names compared as DNS names); function: predicate.
local function matches(entry, filter)
  if filter == nil then return true end
  local ft = type(filter)
  if ft == "function" then return filter(entry) and true or false end
  if ft == "string" then filter = { name = filter } end
  for k, want in pairs(filter) do
    local have = entry[k]
    if k == "name" then
      local function canon(s)
        s = tostring(s):lower()
        return (s:gsub("%.$", ""))
      end
      if have == nil or canon(have) ~= canon(want) then return false end
    elseif have ~= want then
      return false
    end
  end
  return true
end

local function decode_log(text)
  local out = {}
  for line in (text or ""):gmatch("([^\n]*)\n") do -- complete lines only
    local e = line ~= "" and cjson.decode(line) or {}
    if math.tointeger then -- Lua 5.4: cjson decodes every number as a float
      for k, v in pairs(e) do
        if type(v) == "number" and k ~= "t" then e[k] = math.tointeger(v) or v end
      end
    end
    out[#out + 1] = e
  end
  return out
end

--- Start a server.
-- `rules` is a rules table without functions, or the path of a Lua file
-- returning one (required when the rules hold `raw` functions).
-- `opts` (optional): port (default 0, any free port), max_seconds (600),
-- timeout (seconds to wait for it to come up, 5).
-- Returns the server object; raises if it does not come up.
function M.start(rules, opts)
  reap_exited()
  opts = opts or {}
  local dir, shared = util.make_dir("fault")
  local rules_path
  if type(rules) == "string" then
    rules_path = util.absolute(rules)
  elseif type(rules) == "table" then
    rules_path = dir .. "/rules.lua"
    local ok, src = pcall(M.serialize, rules)
    if not ok then
      util.remove_dir(dir)
      error(src, 2)
    end
    util.write_file(rules_path, src)
  else
    error("fault.start: rules must be a table or a path", 2)
  end
  local log_path, ready = dir .. "/log.jsonl", dir .. "/ready"
  local err_path = dir .. "/stderr"
  local lua = M.interpreter()
  local args = {
    M.program, "--rules", rules_path, "--log", log_path, "--ready", ready,
    "--pidfile", dir .. "/pid", "--port", tostring(opts.port or 0),
    "--max-seconds", tostring(opts.max_seconds or 600),
    "--parent", string.format("%d", uv.os_getpid()),
  }
  local null = assert(uv.fs_open("/dev/null", "r", 0))
  local errfd = assert(uv.fs_open(err_path, "w", 420))
  local exit = {}
  local proc, pid
  proc, pid = uv.spawn(lua, { args = args, stdio = { null, errfd, errfd } },
    function(code, signal)
      exit.code, exit.signal = code, signal
      handles[pid] = nil
      if proc and not proc:is_closing() then proc:close() end
    end)
  uv.fs_close(null)
  uv.fs_close(errfd)
  if not proc then
    util.remove_dir(dir)
    error("fault.start: cannot run " .. lua .. ": " .. tostring(pid), 2)
  end
  -- never keep a caller's uv.run() waiting for us
  proc:unref()
  handles[pid] = proc

  local self = { host = "127.0.0.1", pid = pid, dir = dir, log_path = log_path }
  local pid_file = util.record_pid(pid)

  local stopped, final_log = false, nil

  -- Wait until the process is gone; `reap` lets libuv collect it (not
  -- from a finalizer or inside a uv.run callback: uv.run must not nest).
  local function wait_gone(seconds, reap)
    return util.wait_until(function()
      if reap then util.pump(proc) end
      if exit.code then return true end
      local st = util.proc_state(pid)
      return st == nil or (st == "Z" and not reap)
    end, seconds, 5)
  end

  local function stop(reap)
    if stopped then return end
    stopped = true
    live[pid] = nil
    if not exit.code then
      util.kill(pid, "sigterm")
      if not wait_gone(3, reap) then
        util.kill(pid, "sigkill")
        wait_gone(2, reap)
      end
    end
    if pid_file then os.remove(pid_file) end
    final_log = util.read_file(log_path)
    if not shared then util.remove_dir(dir) end
  end

  --- Stop the server (SIGTERM, then SIGKILL after 3 s) and wait for it to
  -- exit.  Idempotent.  The log stays readable afterwards.
  function self.stop() stop(uv.loop_mode() == nil) end

  --- How the process ended: exit code and signal number (nil while it
  -- runs, or when it was not reaped here).
  function self.exit_status() return exit.code, exit.signal end

  --- Whether the process is still running.
  function self.running()
    return not exit.code and util.alive(pid)
  end

  --- All log entries, decoded, in order.
  function self.log()
    return decode_log(final_log or util.read_file(log_path))
  end

  --- Query entries (not reply events) passing `filter` (see README).
  function self.queries(filter)
    local out = {}
    for _, e in ipairs(self.log()) do
      if e.event == nil and e.name ~= nil and matches(e, filter) then out[#out + 1] = e end
    end
    return out
  end

  --- How many queries for `name` (any case) and `qtype` the server
  -- received after entry `from` (default 0) of its log.
  function self.count(name, qtype, from)
    local n = 0
    for i, e in ipairs(self.log()) do
      if i > (from or 0) and e.event == nil and e.name and e.name:lower() == name
         and e.type == qtype then
        n = n + 1
      end
    end
    return n
  end

  --- Reply events passing `filter`.
  function self.replies(filter)
    local out = {}
    for _, e in ipairs(self.log()) do
      if e.event == "reply" and matches(e, filter) then out[#out + 1] = e end
    end
    return out
  end

  --- Wait up to `seconds` (default 5) until at least `n` (default 1)
  -- query entries pass `filter`; returns them, or nil on timeout.
  function self.wait(filter, n, seconds)
    return util.wait_until(function()
      local got = self.queries(filter)
      return #got >= (n or 1) and got
    end, seconds or 5, 5) or nil
  end

  -- stop the server when this object is collected or the state closes
  self._sentinel = util.sentinel(function() stop(false) end)
  live[pid] = self

  -- wait for the ready file
  local deadline = util.now() + (opts.timeout or 5)
  local can_reap = uv.loop_mode() == nil
  while true do
    if can_reap then util.pump(proc) end
    local port = tonumber(util.read_file(ready) or "")
    if port then
      self.port = port
      break
    end
    if exit.code or util.now() > deadline then
      local why = util.read_file(err_path) or ""
      stop(can_reap)
      error("fault.start: server did not come up"
        .. (exit.code and (" (exit " .. exit.code .. ")") or " within timeout")
        .. ": " .. why, 2)
    end
    uv.sleep(5)
  end
  self.addr = self.host .. ":" .. self.port
  return self
end

--- Stop every server started by this process and not yet stopped (and
-- reap those that a finalizer stopped).
function M.stop_all()
  local list = {}
  for _, s in pairs(live) do list[#list + 1] = s end
  for _, s in ipairs(list) do s.stop() end
  reap_exited()
end

return M
