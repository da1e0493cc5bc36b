--- Knot DNS fixture: an authoritative server on 127.0.0.1, at a free high
-- port, serving every `*.zone` file of a directory (zone name = file name
-- without `.zone`).
--
-- From Lua (busted, scripts; Lua 5.4 and LuaJIT):
--
--     local knot = require "support.knot"
--     local srv = knot.start { zones = "spec/zones" }
--     -- srv.host = "127.0.0.1", srv.port = 53xxx, srv.addr = "127.0.0.1:53xxx"
--     srv.stop()                -- idempotent
--     local shared = knot.shared()  -- MXR_KNOT if set, else one started
--                                   -- on first use, stopped at exit
--
-- From the shell:
--
--     lua5.4 spec/support/knot.lua serve ZONEDIR   # foreground; prints
--         "PORT PID" once ready, stops knotd on SIGTERM/SIGINT/SIGHUP
--     lua5.4 spec/support/knot.lua start ZONEDIR   # prints "PORT PID" and
--         leaves knotd running in its own session
--     lua5.4 spec/support/knot.lua stop PID        # stops what start started
--
-- Temporary files live under $MXR_TEST_TMP when it is set (and the server's
-- pid is recorded in $MXR_TEST_TMP/pids/ so that spec/support/run-tests can
-- kill it whatever happens), else in a fresh `mktemp -d` directory that
-- stop() removes. When knotd is not installed, NSD is used instead.

local uv = require "luv"

local M = {}

local READY_TIMEOUT = 10     -- seconds until every zone must answer SOA
local POLL_INTERVAL = 50     -- milliseconds between readiness probes
local STOP_TIMEOUT = 5       -- seconds between SIGTERM and SIGKILL
local START_ATTEMPTS = 8     -- ports tried when knotd cannot bind
local MARKER = ".mxr-dns-fixture"

local running = {}           -- servers this process must stop at exit

-- Shell helpers ---------------------------------------------------------

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- os.execute returns a number in Lua 5.1/LuaJIT, true|nil,... in 5.2+.
local function execute(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

local function sleep_ms(ms)
  uv.sleep(ms)
end

local function now()
  return uv.hrtime() / 1e9
end

-- A luv handle that is still usable (not closing, not finalized).
local function usable(h)
  if not h then return false end
  local ok, closing = pcall(h.is_closing, h)
  return ok and not closing
end

-- Run whatever is ready on the luv loop (process exits, handle closes)
-- without blocking; tolerate being called from inside a running loop.
-- The process handle is unreferenced (so that a spec's own uv.run() does
-- not wait for the server); reference it meanwhile so the loop polls.
local function pump(h)
  local reffed = usable(h) and pcall(h.ref, h)
  pcall(uv.run, "nowait")
  if reffed and usable(h) then pcall(h.unref, h) end
end

-- Find an executable in PATH or in the usual sbin/bin directories.
local function find_exe(name)
  local path = (os.getenv("PATH") or "") .. ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  for dir in path:gmatch("[^:]+") do
    local p = dir .. "/" .. name
    local st = uv.fs_stat(p)
    if st and st.type == "file" then return p end
  end
  return nil
end

local function this_dir()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/[^/]*$") or "."
  return dir
end

local function default_zones()
  return this_dir() .. "/../zones"
end

local function make_tmpdir()
  local base = os.getenv("MXR_TEST_TMP")
  local template
  if base and base ~= "" then
    template = base .. "/dns.XXXXXX"
  else
    template = (os.getenv("TMPDIR") or "/tmp") .. "/mxr-dns.XXXXXX"
  end
  local dir = capture("mktemp -d " .. quote(template) .. " 2>/dev/null"):gsub("%s+$", "")
  assert(dir ~= "", "support.knot: cannot create a temporary directory from " .. template)
  write_file(dir .. "/" .. MARKER, "")
  return dir
end

local function pid_dir()
  local base = os.getenv("MXR_TEST_TMP")
  if not base or base == "" then return nil end
  local dir = base .. "/pids"
  uv.fs_mkdir(dir, 493) -- 0755; fails harmlessly if it exists
  return dir
end

local function list_zones(dir)
  local req, err = uv.fs_scandir(dir)
  assert(req, "support.knot: cannot read zone directory " .. dir .. ": " .. tostring(err))
  local zones = {}
  while true do
    local name, typ = uv.fs_scandir_next(req)
    if not name then break end
    local zone = name:match("^(.+)%.zone$")
    if zone and typ ~= "directory" then zones[#zones + 1] = zone end
  end
  table.sort(zones)
  assert(#zones > 0, "support.knot: no *.zone files in " .. dir)
  return zones
end

-- A port that is free for both UDP and TCP on 127.0.0.1 right now.
local function free_port()
  for _ = 1, 100 do
    local udp = uv.new_udp()
    local port
    if udp:bind("127.0.0.1", 0) then
      port = udp:getsockname().port
    end
    local ok = false
    if port then
      local tcp = uv.new_tcp()
      -- libuv may report EADDRINUSE only at listen time.
      ok = tcp:bind("127.0.0.1", port) and tcp:listen(1, function() end) and true or false
      tcp:close()
    end
    udp:close()
    pump(nil)
    if ok then return port end
  end
  error("support.knot: no free port found on 127.0.0.1")
end

-- Process liveness: a zombie counts as gone (nobody may reap orphans).
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= "Z" and state ~= "X"
end

-- Server configuration --------------------------------------------------

local function knot_conf(dir, zonedir, zones, port)
  local lines = {
    "# generated by spec/support/knot.lua",
    "server:",
    "    listen: 127.0.0.1@" .. port,
    "    rundir: " .. dir .. "/run",
    "    user: root:root",
    "    background-workers: 1",
    "log:",
    "  - target: stderr",
    "    any: info",
    "database:",
    "    storage: " .. dir .. "/db",
    "template:",
    "  - id: default",
    "    storage: " .. zonedir,
    "    zonefile-sync: -1",
    "    zonefile-load: whole",
    "    journal-content: none",
    "    semantic-checks: off",
    "zone:",
  }
  for _, z in ipairs(zones) do
    lines[#lines + 1] = "  - domain: " .. z .. "."
  end
  return table.concat(lines, "\n") .. "\n"
end

local function nsd_conf(dir, zonedir, zones, port)
  local lines = {
    "# generated by spec/support/knot.lua (NSD fallback)",
    "server:",
    "    ip-address: 127.0.0.1@" .. port,
    "    port: " .. port,
    "    do-ip6: no",
    "    username: \"\"",
    "    chroot: \"\"",
    "    server-count: 1",
    "    zonesdir: \"" .. zonedir .. "\"",
    "    database: \"\"",
    "    pidfile: \"" .. dir .. "/run/nsd.pid\"",
    "    zonelistfile: \"" .. dir .. "/db/zone.list\"",
    "    xfrdfile: \"" .. dir .. "/db/xfrd.state\"",
    "    xfrdir: \"" .. dir .. "/db\"",
    "    verbosity: 1",
    "remote-control:",
    "    control-enable: no",
  }
  for _, z in ipairs(zones) do
    lines[#lines + 1] = "zone:"
    lines[#lines + 1] = "    name: \"" .. z .. ".\""
    lines[#lines + 1] = "    zonefile: \"" .. z .. ".zone\""
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Every zone answers SOA (one kdig run asks them all). Probe over TCP
-- first: a refused connection fails at once, where UDP waits a second.
local function all_zones_answer(kdig, port, zones, tcp)
  local parts = { quote(kdig), "@127.0.0.1", "-p", tostring(port), "+short", "+time=1", "+retry=0",
    tcp and "+tcp" or "+notcp" }
  for _, z in ipairs(zones) do
    parts[#parts + 1] = quote(z .. ".")
    parts[#parts + 1] = "SOA"
  end
  local out = capture(table.concat(parts, " ") .. " 2>/dev/null")
  local n = 0
  for line in out:gmatch("[^\n]+") do
    if line:match("%S+%.%s+%S+%.%s+%d+") then n = n + 1 end
  end
  return n >= #zones
end

-- An object whose finalizer calls fn.
local function sentinel(fn)
  if newproxy then -- luacheck: ignore 113
    local p = newproxy(true) -- luacheck: ignore 113
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

-- Server object ---------------------------------------------------------

local Server = {}
Server.__index = Server

local function cleanup(self)
  if self.pidfile then os.remove(self.pidfile) end
  if self.dir and read_file(self.dir .. "/" .. MARKER) then
    execute("rm -rf " .. quote(self.dir))
  end
  running[self] = nil
end

-- Wait until the server process is gone; true if it went in time.
local function wait_gone(self, timeout)
  local deadline = now() + timeout
  while true do
    pump(self.handle)
    -- Our own child counts as gone once luv has reaped it; another
    -- process (or ours when the loop is already finalized) once /proc
    -- says it is gone or a zombie.
    if self.exited then return true end
    if not usable(self.handle) and not alive(self.pid) then return true end
    if now() > deadline then return false end
    sleep_ms(10)
  end
end

local function signal(self, sig)
  if self.exited then return end
  if usable(self.handle) and pcall(self.handle.kill, self.handle, sig) then return end
  if alive(self.pid) and not pcall(uv.kill, self.pid, sig) then
    execute("kill -" .. sig:sub(4):upper() .. " " .. self.pid .. " 2>/dev/null")
  end
end

--- Stop the server and remove its temporary files. Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  signal(self, "sigterm")
  if not wait_gone(self, STOP_TIMEOUT) then
    signal(self, "sigkill")
    wait_gone(self, STOP_TIMEOUT)
  end
  cleanup(self)
end

-- Spawn the server once on `port`; returns the server table, or nil and
-- the log text when the process died before answering.
local function spawn_once(opts, kind, exe, dir, zonedir, zones, port, kdig)
  local conf = dir .. "/" .. kind .. ".conf"
  local log = dir .. "/" .. kind .. ".log"
  local sock = dir .. "/run/knot.sock"
  local args
  if kind == "knot" then
    write_file(conf, knot_conf(dir, zonedir, zones, port))
    args = { "-c", conf, "-s", sock }
  else
    write_file(conf, nsd_conf(dir, zonedir, zones, port))
    args = { "-d", "-c", conf }
  end
  local logfd = assert(uv.fs_open(log, "w", 420))
  local nullfd = assert(uv.fs_open("/dev/null", "r", 0))
  local self = setmetatable({
    host = "127.0.0.1", port = port, addr = "127.0.0.1:" .. port,
    kind = kind, dir = dir, conf = conf, log = log, zones = zones,
    zonedir = zonedir,
  }, Server)
  local handle, pid = uv.spawn(exe, {
    args = args,
    stdio = { nullfd, logfd, logfd },
    detached = opts.detach and true or false,
  }, function(code, sig)
    self.exited, self.code, self.signal = true, code, sig
    if usable(self.handle) then self.handle:close() end
  end)
  uv.fs_close(logfd)
  uv.fs_close(nullfd)
  if not handle then
    error("support.knot: cannot start " .. exe .. ": " .. tostring(pid))
  end
  self.handle, self.pid = handle, pid
  handle:unref()
  self.stop = function() return Server.stop(self) end
  if not opts.detach then
    -- Stop it when the Lua state closes (busted exits through
    -- os.exit(code, true)). Finalizers run in reverse order of creation,
    -- so a sentinel made after the luv handle runs while the handle and
    -- the loop still work. newproxy: Lua 5.1/LuaJIT; 5.2+ finalizes tables.
    self.sentinel = sentinel(function() pcall(Server.stop, self) end)
    running[self] = true -- strong reference: never collected before exit
  end

  local pids = pid_dir()
  if pids then
    self.pidfile = pids .. "/" .. kind .. "-" .. pid .. ".pid"
    write_file(self.pidfile, pid .. "\n")
  end

  local deadline = now() + (opts.timeout or READY_TIMEOUT)
  while true do
    pump(handle)
    if self.exited then
      local text = read_file(log) or ""
      self.stopped = true
      cleanup(self)
      return nil, text
    end
    if all_zones_answer(kdig, port, zones, true) and all_zones_answer(kdig, port, zones, false) then
      return self
    end
    if now() > deadline then
      self:stop()
      error(("support.knot: %s on port %d did not serve every zone within %gs; log:\n%s")
        :format(kind, port, opts.timeout or READY_TIMEOUT, read_file(log) or ""))
    end
    sleep_ms(POLL_INTERVAL)
  end
end

--- Start a server. Options: `zones` (directory of *.zone files, default
-- spec/zones), `timeout` (seconds to become ready, default 10), `detach`
-- (own session, not stopped at exit; for the shell entry).
-- Returns a table { host, port, addr, pid, dir, log, zones, stop }.
function M.start(opts)
  opts = opts or {}
  local zonedir = opts.zones or default_zones()
  zonedir = assert(uv.fs_realpath(zonedir), "support.knot: no such zone directory: " .. tostring(zonedir))
  local zones = list_zones(zonedir)
  local kind, exe = "knot", find_exe("knotd")
  if not exe then kind, exe = "nsd", find_exe("nsd") end
  assert(exe, "support.knot: neither knotd nor nsd is installed")
  local kdig = find_exe("kdig") or "kdig"

  local lastlog = ""
  for _ = 1, START_ATTEMPTS do
    local dir = make_tmpdir()
    uv.fs_mkdir(dir .. "/run", 493)
    uv.fs_mkdir(dir .. "/db", 493)
    local srv, log = spawn_once(opts, kind, exe, dir, zonedir, zones, free_port(), kdig)
    if srv then return srv end
    lastlog = log
    -- Somebody took the port between our probe and knotd's bind: retry.
    if not log:lower():find("in use", 1, true) then break end
  end
  error("support.knot: " .. kind .. " failed to start; log:\n" .. lastlog)
end

--- The servers this process started and has not stopped yet (an array).
function M.servers()
  local list = {}
  for srv in pairs(running) do list[#list + 1] = srv end
  return list
end

local shared

--- The suite's shared server: the one named by MXR_KNOT ("IP:PORT") when
-- set (stop() is then a no-op), else one serving spec/zones, started on
-- first use and stopped when the Lua state closes.
function M.shared()
  if shared then return shared end
  local env = os.getenv("MXR_KNOT")
  if env and env ~= "" then
    local host, port = env:match("^(.+):(%d+)$")
    assert(host, "support.knot: MXR_KNOT must be IP:PORT, got " .. env)
    shared = {
      host = host, port = tonumber(port), addr = env, external = true,
      stop = function() end,
    }
  else
    shared = M.start { zones = default_zones() }
  end
  return shared
end


-- Shell entry -----------------------------------------------------------

-- Stop a server that `start` left running, given its pid.
local function stop_pid(pid)
  local cmdline = read_file("/proc/" .. pid .. "/cmdline")
  if not cmdline then return true end
  local argv = {}
  for a in cmdline:gmatch("[^%z]+") do argv[#argv + 1] = a end
  local exe = (argv[1] or ""):match("[^/]*$")
  if exe ~= "knotd" and exe ~= "nsd" then
    io.stderr:write("knot.lua: process ", pid, " is not knotd/nsd\n")
    return false
  end
  local conf
  for i = 1, #argv - 1 do
    if argv[i] == "-c" then conf = argv[i + 1] end
  end
  local self = setmetatable({ pid = tonumber(pid), dir = conf and conf:match("^(.*)/[^/]*$") }, Server)
  local pids = pid_dir()
  if pids then self.pidfile = pids .. "/" .. (exe == "knotd" and "knot" or "nsd") .. "-" .. pid .. ".pid" end
  self:stop()
  return not alive(pid)
end

local function serve(zonedir)
  local srv = M.start { zones = zonedir }
  io.stdout:write(srv.port, " ", srv.pid, "\n")
  io.stdout:flush()
  srv.handle:ref()
  local signals = {}
  local function shutdown()
    signal(srv, "sigterm")
    local t = uv.new_timer()
    t:start(STOP_TIMEOUT * 1000, 0, function() signal(srv, "sigkill") t:close() end)
    t:unref()
  end
  for _, name in ipairs { "sigterm", "sigint", "sighup" } do
    local s = uv.new_signal()
    s:start(name, shutdown)
    signals[#signals + 1] = s
  end
  -- The process handle keeps the loop alive until knotd exits; then the
  -- exit callback closes it and we drop the signal handles.
  local watcher = uv.new_check()
  watcher:start(function()
    if srv.exited then
      for _, s in ipairs(signals) do if not s:is_closing() then s:close() end end
      if not watcher:is_closing() then watcher:close() end
    end
  end)
  uv.run()
  srv.stopped = true
  cleanup(srv)
  return srv.code == 0 or srv.signal ~= 0
end

local function main(cmd, what)
  local ok
  if cmd == "start" and what then
    local srv = M.start { zones = what, detach = true }
    io.stdout:write(srv.port, " ", srv.pid, "\n")
    ok = true
  elseif cmd == "serve" and what then
    ok = serve(what)
  elseif cmd == "stop" and what and what:match("^%d+$") then
    ok = stop_pid(what)
  else
    io.stderr:write("usage: knot.lua start ZONEDIR | serve ZONEDIR | stop PID\n")
    ok = false
  end
  os.exit(ok and 0 or 1)
end

if type(arg) == "table" and type(arg[0]) == "string" and arg[0]:match("knot%.lua$")
    and ... ~= "support.knot" then
  main(...)
end

return M
