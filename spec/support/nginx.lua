--- nginx fixture: Debian's nginx with the Lua module (ngx_lua on LuaJIT),
-- one worker process, listening on 127.0.0.1 at a free high port, with
-- `lua_package_path` / `lua_package_cpath` pointing at this checkout's
-- `lua/` and `build/luajit/`.
--
--     local nginx = require "support.nginx"
--     local srv = nginx.start {
--       http = "lua_shared_dict d 1m;",          -- inside http {}
--       server = "location /t { return 200; }",  -- inside server {}
--       main = "",                               -- top level
--       files = { ["app.lua"] = "return {}" },   -- PREFIX/lua/, on the path
--     }
--     -- srv.host, srv.port, srv.url, srv.prefix, srv.pid, srv.workers
--     local res = srv.get("/t")  -- { status, headers, body } (raises on
--                                -- a transport error)
--     local b = srv.batch()      -- concurrent requests:
--     local r1 = b:get("/slow")  --   started at once, completed by
--     b:run_until(pred, secs)    --   pumping the event loop; each
--     b:wait(secs)               --   response gets .seq (completion order)
--     srv.error_log()            -- text of PREFIX/error.log
--     srv.stop()                 -- idempotent; also at exit
--
-- Temporary files live under $MXR_TEST_TMP when it is set (and the pids of
-- the master and worker processes are recorded in $MXR_TEST_TMP/pids/ so
-- that spec/support/run-tests can kill them whatever happens), else in a
-- fresh directory under $TMPDIR (default /tmp) that stop() removes. The
-- HTTP client is a small HTTP/1.0 client on luv: no curl needed. Works
-- under Lua 5.4 and LuaJIT. Shared helpers: support/util.lua.
local uv = require "luv"
local util = require "support.util"

local M = {}

local READY_TIMEOUT = 10   -- seconds until nginx must accept connections
local STOP_TIMEOUT = 5     -- seconds between SIGTERM and SIGKILL
local START_ATTEMPTS = 5   -- ports tried when nginx cannot bind

M.NGINX = "/usr/sbin/nginx"
M.MODULE_DIRS = { "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }
-- Load order matters: the Lua module needs the NDK loaded first.
M.MODULES = { "ndk_http_module.so", "ngx_http_lua_module.so" }

local running = {} -- servers to stop at exit

-- Helpers ---------------------------------------------------------------

--- Absolute path of the checkout (two levels above this file).
function M.repo()
  return assert(uv.fs_realpath(util.dir .. "/../.."))
end

-- Pids of the children of `ppid` (nginx workers of a master).
local function children(ppid)
  local out = {}
  local req = uv.fs_scandir("/proc")
  while req do
    local name = uv.fs_scandir_next(req)
    if not name then break end
    if name:match("^%d+$") then
      local stat = util.read_file("/proc/" .. name .. "/stat")
      local pp = stat and stat:match("^%d+ %b() %a (%d+)")
      if pp and tonumber(pp) == ppid then out[#out + 1] = tonumber(name) end
    end
  end
  table.sort(out)
  return out
end

local function find_module(file)
  for _, dir in ipairs(M.MODULE_DIRS) do
    local p = dir .. "/" .. file
    if uv.fs_stat(p) then return p end
  end
  return nil
end

-- HTTP/1.0 client -------------------------------------------------------

local function parse_response(raw)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  if not head then return { error = "malformed response", raw = raw } end
  local status = tonumber(head:match("^HTTP/%d%.%d (%d%d%d)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do
    headers[k:lower()] = v
  end
  return { status = status, headers = headers, body = body }
end

local function url_escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- "path?k=v&..." with the values of `args` escaped (keys sorted).
function M.path(path, args)
  if not args then return path end
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then v = table.concat(v, ",") end
    parts[#parts + 1] = url_escape(k) .. "=" .. url_escape(v)
  end
  if #parts == 0 then return path end
  return path .. (path:find("?", 1, true) and "&" or "?") .. table.concat(parts, "&")
end

local Batch = {}
Batch.__index = Batch

--- A set of concurrent requests to 127.0.0.1:port.
function M.batch(port)
  return setmetatable({ port = port, list = {}, seq = 0, t0 = util.now() }, Batch)
end

--- b:get(path) -> response table, filled in once complete (.done). The
-- connection is opened at once; the loop runs in run_until / wait.
function Batch:get(path)
  local res = { path = path, done = false, started = util.now() }
  local list = self.list
  list[#list + 1] = res
  local c = uv.new_tcp()
  res.conn = c
  local chunks = {}
  local function complete(r)
    if res.done then return end
    for k, v in pairs(r) do res[k] = v end
    res.done = true
    self.seq = self.seq + 1
    res.seq = self.seq
    res.elapsed = util.now() - res.started
    if not c:is_closing() then c:close() end
  end
  c:connect("127.0.0.1", self.port, function(err)
    if err then return complete { error = err } end
    c:write("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    c:read_start(function(rerr, chunk)
      if rerr then return complete { error = rerr } end
      if chunk then
        chunks[#chunks + 1] = chunk
      else
        complete(parse_response(table.concat(chunks)))
      end
    end)
  end)
  return res
end

--- b:run_until(pred, seconds) -> true once pred() holds, false after
-- `seconds` (default 10), pumping the event loop meanwhile.
function Batch.run_until(_, pred, seconds)
  return util.wait_until(function()
    uv.run("nowait")
    return pred()
  end, seconds or 10, 2) and true or false
end

--- b:wait(seconds) -> the responses, in the order requested, once all are
-- complete; those still open after `seconds` (default 20) get
-- error = "timeout".
function Batch:wait(seconds)
  local list = self.list
  local all = function()
    for _, r in ipairs(list) do if not r.done then return false end end
    return true
  end
  if not self:run_until(all, seconds or 20) then
    for _, r in ipairs(list) do
      if not r.done then
        r.done, r.error = true, "timeout"
        if not r.conn:is_closing() then r.conn:close() end
      end
    end
    uv.run("nowait")
  end
  return list
end

--- nginx.get(port, path [, seconds]) -> { status, headers, body }; raises
-- when there is no HTTP response.
function M.get(port, path, seconds)
  local b = M.batch(port)
  local r = b:get(path)
  b:wait(seconds or 20)
  if r.error then error("support.nginx: GET " .. path .. ": " .. tostring(r.error), 2) end
  return r
end

-- Server ----------------------------------------------------------------

local Server = {}
Server.__index = Server

local function conf_text(opts, prefix, port, modules)
  local repo = M.repo()
  local lines = { "# generated by spec/support/nginx.lua" }
  for _, m in ipairs(modules) do lines[#lines + 1] = "load_module " .. m .. ";" end
  local uid = uv.getuid and uv.getuid()
  lines[#lines + 1] = uid == 0 and "user root root;" or "# not root: workers keep our user"
  for _, l in ipairs {
    "worker_processes " .. (opts.workers or 1) .. ";",
    "master_process on;",
    "pid " .. prefix .. "/nginx.pid;",
    "error_log " .. prefix .. "/error.log " .. (opts.log_level or "info") .. ";",
    "worker_rlimit_nofile 8192;",
    "events { worker_connections 4096; }",
    opts.main or "",
    "http {",
    "    access_log off;",
    "    client_body_temp_path " .. prefix .. "/tmp/body;",
    "    proxy_temp_path " .. prefix .. "/tmp/proxy;",
    "    fastcgi_temp_path " .. prefix .. "/tmp/fastcgi;",
    "    uwsgi_temp_path " .. prefix .. "/tmp/uwsgi;",
    "    scgi_temp_path " .. prefix .. "/tmp/scgi;",
    "    lua_package_path '" .. repo .. "/lua/?.lua;" .. repo .. "/lua/?/init.lua;"
      .. prefix .. "/lua/?.lua;;';",
    "    lua_package_cpath '" .. (opts.cpath or (repo .. "/build/luajit/?.so")) .. ";;';",
    opts.http or "",
    "    server {",
    "        listen 127.0.0.1:" .. port .. ";",
    opts.server or "",
    "    }",
    "}",
  } do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

local function cleanup(self)
  for _, f in ipairs(self.pidfiles or {}) do os.remove(f) end
  self.pidfiles = {}
  if not self.keep then util.remove_dir(self.prefix) end
  running[self] = nil
end

-- Wait until the master and the given workers are gone.
local function wait_gone(self, pids, timeout)
  return util.wait_until(function()
    util.pump(self.handle)
    if not self.exited and (util.usable(self.handle) or util.alive(self.pid)) then return false end
    for _, p in ipairs(pids) do if util.alive(p) then return false end end
    return true
  end, timeout, 10)
end

--- Stop nginx (SIGTERM: fast shutdown; SIGKILL to master and workers if
-- it does not end in time) and remove its files. Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  local pids = children(self.pid)
  for _, p in ipairs(self.workers or {}) do pids[#pids + 1] = p end
  if not self.exited then util.kill(self.pid, "sigterm") end
  if not wait_gone(self, pids, STOP_TIMEOUT) then
    util.kill(self.pid, "sigkill")
    for _, p in ipairs(pids) do util.kill(p, "sigkill") end
    wait_gone(self, pids, STOP_TIMEOUT)
  end
  if self.watchdog_pid then
    -- it ends by itself now that nginx is gone; do not wait for its sleep
    util.kill(self.watchdog_pid, "sigterm")
    util.wait_until(function()
      util.pump(self.watchdog)
      return not util.alive(self.watchdog_pid)
    end, STOP_TIMEOUT, 5)
    util.pump(self.watchdog) -- reap it
  end
  self.final_log = Server.error_log(self)
  cleanup(self)
end

--- Text of the error log and of nginx's stderr (also after stop()).
function Server:error_log()
  local log = util.read_file(self.prefix .. "/error.log")
  if not log then return self.final_log or "" end
  return log .. (util.read_file(self.prefix .. "/stderr.log") or "")
end

local function record_pid(self, pid, kind)
  local f = util.record_pid(pid, "nginx-" .. kind .. "-" .. pid .. ".pid")
  if f then self.pidfiles[#self.pidfiles + 1] = f end
end

-- Whether something accepts TCP connections on 127.0.0.1:port.
local function accepts(port)
  local c = uv.new_tcp()
  local result
  c:connect("127.0.0.1", port, function(err) result = err == nil end)
  util.wait_until(function()
    uv.run("nowait")
    return result ~= nil
  end, 1, 2)
  if not c:is_closing() then c:close() end
  uv.run("nowait")
  return result == true
end

-- A shell loop that stops nginx if this Lua process dies without doing it
-- (killed by a signal: no finalizer runs), and ends with nginx.
local function start_watchdog(self)
  local script = ("while kill -0 %d 2>/dev/null && kill -0 %d 2>/dev/null; do sleep 0.2; done; "
    .. "kill -TERM %d 2>/dev/null"):format(uv.os_getpid(), self.pid, self.pid)
  local nullfd = assert(uv.fs_open("/dev/null", "r+", 0))
  local handle, pid = uv.spawn("/bin/sh", {
    args = { "-c", script }, stdio = { nullfd, nullfd, nullfd },
  }, function()
    if util.usable(self.watchdog) then self.watchdog:close() end
  end)
  uv.fs_close(nullfd)
  if not handle then return end
  handle:unref()
  self.watchdog, self.watchdog_pid = handle, pid
  record_pid(self, pid, "watchdog")
end

local function spawn_once(opts, prefix, port, modules)
  local conf = prefix .. "/nginx.conf"
  local text = opts.conf and opts.conf(prefix, port) or conf_text(opts, prefix, port, modules)
  util.write_file(conf, text)
  local args = { "-p", opts.conf and opts.prefix or prefix, "-c", conf }
  if not text:find("\ndaemon%s+off") then
    args[#args + 1] = "-g"
    args[#args + 1] = "daemon off;"
  end
  util.write_file(prefix .. "/error.log", "")
  local self = setmetatable({
    host = "127.0.0.1", port = port, url = "http://127.0.0.1:" .. port,
    prefix = prefix, conf = conf, pidfiles = {}, keep = opts.keep,
  }, Server)
  -- the LuaJIT inside nginx must not pick up the module paths of the Lua
  -- running the specs (a Lua 5.4 build of mxroute.core, say)
  local env = {}
  for k, v in pairs(uv.os_environ()) do
    if not k:match("^LUA_") then env[#env + 1] = k .. "=" .. v end
  end
  local handle, pid = util.spawn(self, opts.nginx or M.NGINX, { args = args, env = env }, prefix .. "/stderr.log")
  if not handle then error("support.nginx: cannot start nginx: " .. tostring(pid)) end
  self.stop = function() return Server.stop(self) end
  self.get = function(path, seconds) return M.get(port, path, seconds) end
  self.batch = function() return M.batch(port) end
  self.error_log = function() return Server.error_log(self) end
  self.sentinel = util.sentinel(function() pcall(Server.stop, self) end)
  running[self] = true
  record_pid(self, pid, "master")

  local deadline = util.now() + (opts.timeout or READY_TIMEOUT)
  while true do
    util.pump(handle)
    if self.exited then
      local log = (util.read_file(prefix .. "/stderr.log") or "") .. (util.read_file(prefix .. "/error.log") or "")
      self.stopped = true
      self.keep = true -- leave the files for the message
      cleanup(self)
      return nil, log
    end
    local pid_ok = opts.conf or tonumber(util.read_file(prefix .. "/nginx.pid") or "") == pid
    if pid_ok and accepts(port) then
      self.workers = children(pid)
      if #self.workers >= 1 then
        for _, w in ipairs(self.workers) do record_pid(self, w, "worker") end
        start_watchdog(self)
        return self
      end
    end
    if util.now() > deadline then
      local log = Server.error_log(self)
      self:stop()
      error(("support.nginx: nginx on port %d did not come up within %gs; log:\n%s")
        :format(port, opts.timeout or READY_TIMEOUT, log))
    end
    uv.sleep(10)
  end
end

--- Start nginx. Options: `main`, `http`, `server` (configuration text
-- for the top level, `http {}` and `server {}`), `files` (name -> text,
-- written to PREFIX/lua/, which is on lua_package_path), `cpath` (instead
-- of build/luajit/?.so), `log_level` (default "info"), `workers` (worker
-- processes, default 1), `timeout`
-- (seconds to come up, default 10). Or a whole configuration of your own:
-- `conf = function(dir, port) return text end` (dir: the temporary
-- directory, for the pid file and temporary paths) and `prefix` (the -p
-- path, default dir).
function M.start(opts)
  opts = opts or {}
  assert(uv.fs_stat(opts.nginx or M.NGINX), "support.nginx: " .. (opts.nginx or M.NGINX)
    .. " is not installed (Debian: nginx-light)")
  local modules = {}
  for _, file in ipairs(M.MODULES) do
    local p = find_module(file)
    if p then
      modules[#modules + 1] = p
    elseif file:find("lua", 1, true) then
      error("support.nginx: " .. file .. " not found (Debian: libnginx-mod-http-lua)")
    end
  end
  local lastlog = ""
  for _ = 1, START_ATTEMPTS do
    local prefix = util.make_dir("nginx")
    uv.fs_chmod(prefix, 493) -- workers may run as another user
    for _, d in ipairs { "/tmp", "/lua", "/logs" } do uv.fs_mkdir(prefix .. d, 493) end
    for name, text in pairs(opts.files or {}) do util.write_file(prefix .. "/lua/" .. name, text) end
    local srv, log = spawn_once(opts, prefix, util.free_port(), modules)
    if srv then return srv end
    lastlog = log
    util.remove_dir(prefix)
    if not log:find("in use", 1, true) then break end
  end
  error("support.nginx: nginx failed to start; log:\n" .. lastlog)
end

--- Stop every server this process started.
function M.stop_all()
  local list = {}
  for s in pairs(running) do list[#list + 1] = s end
  for _, s in ipairs(list) do s:stop() end
end

return M
