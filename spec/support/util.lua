--- Process, file and event-loop helpers shared by the test fixtures
-- (knot.lua, nginx.lua, fault.lua) and the specs: one copy of each.
--
--     local util = require "support.util"
--     util.quote(s)              -- s as one shell word
--     util.execute(cmd)          -- true when the shell command exits 0
--     util.capture(cmd)          -- its standard output
--     util.read_file(path)       -- the contents, or nil
--     util.write_file(path, s)   -- raises when it cannot
--     util.now()                 -- seconds on a monotonic clock
--     util.wait_until(pred, s, ms) -- poll pred() every ms (10) for s (5)
--                                -- seconds: its first true value, or false
--     util.usable(h), util.pump(h)  -- luv handles: see below
--     util.free_port(udp)        -- a port free for TCP (and UDP) right now
--     util.dead_port()           -- a UDP port where nothing listens
--     util.spawn(obj, exe, opts, log)  -- a server as a child process
--     util.proc_state(pid), util.alive(pid), util.kill(pid, sig)
--     util.sentinel(fn)          -- an object whose finalizer calls fn
--     util.dir                   -- absolute path of spec/support
--     util.absolute(path), util.interpreter()
--     util.make_dir(name), util.remove_dir(dir)  -- private directories
--     util.pid_dir(), util.record_pid(pid, file) -- $MXR_TEST_TMP/pids
--
-- Every address is 127.0.0.1. Works under Lua 5.4 and LuaJIT (Lua 5.1);
-- needs luv. The module keeps no state, so a fixture run as a script may
-- load it with dofile as well.
local uv = require "luv"

local M = {}

-- Files and commands --------------------------------------------------------

--- `s` quoted as one word for /bin/sh.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Run a shell command; true when it exits 0. (os.execute returns a number
-- in Lua 5.1/LuaJIT, true|nil, "exit", code in 5.2+.)
function M.execute(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

--- The standard output of a shell command.
function M.capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

--- Run `command` (a shell command prefix, e.g. "lua5.4 bin/mxroute")
-- with the words of `args` quoted after it; opts.stdin: a file for
-- standard input (default /dev/null), opts.cwd: the working directory.
-- Returns standard output, standard error and the exit status.
function M.run(command, args, opts)
  opts = opts or {}
  local parts = { command }
  for _, a in ipairs(args) do parts[#parts + 1] = M.quote(a) end
  local errfile = os.tmpname()
  local cmd = table.concat(parts, " ") .. " 2>" .. M.quote(errfile) .. " <"
              .. M.quote(opts.stdin or "/dev/null") .. "; printf '\\n%d' $?"
  if opts.cwd then cmd = "cd " .. M.quote(opts.cwd) .. " && " .. cmd end
  local text = M.capture(cmd)
  local err = assert(M.read_file(errfile))
  os.remove(errfile)
  local out, status = text:match("^(.*)\n(%d+)$")
  return out, err, tonumber(status)
end

--- The contents of a file, or nil when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Write `text` to a file (replacing it); raises on failure.
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

--- `path` made absolute against the working directory.
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  path = path:gsub("^%./", "")
  if path == "" or path == "." then return uv.cwd() end
  return uv.cwd() .. "/" .. path
end

--- Absolute path of the directory holding the support files.
M.dir = M.absolute(debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")

--- The interpreter for sub-processes: $MXR_LUA, else the one running this
-- code (lua5.4 or luajit).
function M.interpreter()
  local env = os.getenv("MXR_LUA")
  if env and env ~= "" then return env end
  return rawget(_G, "jit") and "luajit" or "lua5.4"
end

-- Time ----------------------------------------------------------------------

--- Seconds on a monotonic clock.
function M.now()
  return uv.hrtime() / 1e9
end

--- Call pred() every `ms` milliseconds (default 10) until it returns a true
-- value, for up to `seconds` (default 5); returns that value, or false.
-- pred() runs at least once, and once more after the deadline.
function M.wait_until(pred, seconds, ms)
  local deadline = M.now() + (seconds or 5)
  while true do
    local v = pred()
    if v then return v end
    if M.now() > deadline then return false end
    uv.sleep(ms or 10)
  end
end

-- luv handles ---------------------------------------------------------------

--- A luv handle that is still usable (not closing, not finalized).
function M.usable(h)
  if not h then return false end
  local ok, closing = pcall(h.is_closing, h)
  return ok and not closing
end

--- Run whatever is ready on the luv loop (process exits, handle closes)
-- without blocking; tolerates being called from inside a running loop.
-- A fixture's process handle is unreferenced (so that a spec's own
-- uv.run() does not wait for the server): `h` is referenced meanwhile so
-- that the loop polls it.
function M.pump(h)
  local reffed = M.usable(h) and pcall(h.ref, h)
  pcall(uv.run, "nowait")
  if reffed and M.usable(h) then pcall(h.unref, h) end
end

--- A port of 127.0.0.1 that is free for TCP right now, and for UDP as well
-- when `udp` is true.
function M.free_port(udp)
  for _ = 1, 100 do
    local u, port = nil, 0
    if udp then
      u = uv.new_udp()
      port = u:bind("127.0.0.1", 0) and u:getsockname().port
    end
    local ok = false
    if port then
      local tcp = uv.new_tcp()
      -- libuv may report EADDRINUSE only at listen time.
      ok = tcp:bind("127.0.0.1", port) and tcp:listen(1, function() end) and true or false
      if ok and port == 0 then port = tcp:getsockname().port end
      tcp:close()
    end
    if u then u:close() end
    M.pump(nil)
    if ok then return port end
  end
  error("support.util: no free port on 127.0.0.1")
end

--- A UDP port of 127.0.0.1 where nothing listens (bound, then released).
function M.dead_port()
  local u = uv.new_udp()
  assert(u:bind("127.0.0.1", 0))
  local port = u:getsockname().port
  u:close()
  M.pump(nil)
  return port
end

-- Processes -----------------------------------------------------------------

--- Start a server process as a child: stdin /dev/null, stdout and
-- stderr to the file `log` (truncated), `opts` as uv.spawn takes them
-- (args, env, detached). Sets obj.handle and obj.pid, the handle
-- unreferenced so that a spec's own uv.run() does not wait for the
-- server; once the exit is seen (by the loop: see pump), sets
-- obj.exited, obj.code and obj.signal and closes the handle. Returns the
-- handle and pid, or nil and the error.
function M.spawn(obj, exe, opts, log)
  local logfd = assert(uv.fs_open(log, "w", 420))
  local nullfd = assert(uv.fs_open("/dev/null", "r", 0))
  local o = { stdio = { nullfd, logfd, logfd } }
  for k, v in pairs(opts) do o[k] = v end
  local handle, pid = uv.spawn(exe, o, function(code, sig)
    obj.exited, obj.code, obj.signal = true, code, sig
    if M.usable(obj.handle) then obj.handle:close() end
  end)
  uv.fs_close(logfd)
  uv.fs_close(nullfd)
  if not handle then return nil, pid end
  handle:unref()
  obj.handle, obj.pid = handle, pid
  return handle, pid
end

--- The state letter of a process from /proc ("R", "S", "Z", ...), or nil
-- when there is no such process.
function M.proc_state(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat")
  return stat and stat:match("^%d+ %b() (%a)")
end

--- Whether a process is running; a zombie counts as gone (nobody may reap
-- orphans).
function M.alive(pid)
  local st = M.proc_state(pid)
  return st ~= nil and st ~= "Z" and st ~= "X"
end

--- Send `sig` ("sigterm", "sigkill", ...) to a process that is alive; with
-- kill(1) when luv can no longer do it (in a finalizer at exit).
function M.kill(pid, sig)
  if M.alive(pid) and not pcall(uv.kill, pid, sig) then
    M.execute("kill -" .. sig:sub(4):upper() .. " " .. pid .. " 2>/dev/null")
  end
end

--- An object whose finalizer calls fn: a userdata from newproxy in Lua
-- 5.1/LuaJIT (only userdata have __gc there), a table in 5.2+.
function M.sentinel(fn)
  if newproxy then -- luacheck: ignore 113
    local p = newproxy(true) -- luacheck: ignore 113
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

-- Private directories -------------------------------------------------------

local MARKER = ".mxr-fixture"

--- A fresh private directory: $MXR_TEST_TMP/NAME.XXXXXX when MXR_TEST_TMP
-- is set (run-tests removes it), else $TMPDIR/mxr-NAME.XXXXXX (default
-- /tmp). Returns its path and whether it is under MXR_TEST_TMP. It holds
-- a marker file, so that remove_dir removes nothing else.
function M.make_dir(name)
  local base = os.getenv("MXR_TEST_TMP")
  local template
  local under_tmp = base ~= nil and base ~= ""
  if under_tmp then
    uv.fs_mkdir(base, 448) -- 0700; fails harmlessly if it exists
    template = base .. "/" .. name .. ".XXXXXX"
  else
    template = (os.getenv("TMPDIR") or "/tmp") .. "/mxr-" .. name .. ".XXXXXX"
  end
  local dir = uv.fs_mkdtemp(template)
  if not dir then error("support.util: cannot create a directory from " .. template, 2) end
  M.write_file(dir .. "/" .. MARKER, "")
  return dir, under_tmp
end

--- Remove a directory that make_dir made, with everything in it; leaves
-- any other directory alone. Plain os calls: it also works from a
-- finalizer at exit, when the luv loop may be gone.
function M.remove_dir(dir)
  if dir and M.read_file(dir .. "/" .. MARKER) then
    M.execute("rm -rf " .. M.quote(dir))
  end
end

--- $MXR_TEST_TMP/pids (created), where run-tests finds the pids to kill
-- whatever happens; nil without MXR_TEST_TMP.
function M.pid_dir()
  local base = os.getenv("MXR_TEST_TMP")
  if not base or base == "" then return nil end
  local dir = base .. "/pids"
  uv.fs_mkdir(base, 448) -- 0700; both fail harmlessly if they exist
  uv.fs_mkdir(dir, 493)  -- 0755
  return dir
end

--- Record `pid` in pid_dir()/`file` (default: the pid itself); returns the
-- file's path, for removal once the process is gone, or nil without
-- MXR_TEST_TMP.
function M.record_pid(pid, file)
  local dir = M.pid_dir()
  if not dir then return nil end
  local path = dir .. "/" .. (file or tostring(pid))
  M.write_file(path, pid .. "\n")
  return path
end

return M
