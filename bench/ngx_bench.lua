--- bench/ngx_bench.lua — mxroute.ngx and the cosocket peer in one nginx
-- (see bench/run).
--
--   luajit bench/ngx_bench.lua SERVER:PORT CONCURRENCY DOMAINFILE [MAX_INFLIGHT]
--
-- Starts nginx (nginx-light + libnginx-mod-http-lua, one worker, a free
-- port, a temporary prefix: spec/support/nginx.lua) with
-- bench/ngx_clients.lua on its path, runs the cosocket peer and
-- mxroute.ngx there one after the other, CONCURRENCY plans in flight each
-- (light threads of one request), prints their result lines and the ratio
-- of mxroute.ngx to the peer, and stops nginx, also on failure (a
-- watchdog stops it if this process is killed). Needs luv (lua-luv) and
-- the LuaJIT build of the core (build/luajit). NGX_BENCH_ONLY=peer|mxroute
-- runs one of them; NGX_BENCH_HOOK='perf record -g -p %d -o FILE' (or
-- 'strace -c -p %d -o FILE': %d is the worker's pid) runs while each
-- client does and is stopped with SIGINT after it; NGX_BENCH_HTTP='text'
-- goes into http {} (e.g. init_worker_by_lua_block to start jit.v).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local nginx = require "support.nginx"
local util = require "support.util"

local server, conc, file, max_inflight = arg[1], tonumber(arg[2]), arg[3], tonumber(arg[4])
assert(server and conc and file,
  "usage: ngx_bench.lua SERVER:PORT CONCURRENCY DOMAINFILE [MAX_INFLIGHT]")
local abs = file:sub(1, 1) == "/" and file or (os.getenv("PWD") or ".") .. "/" .. file

local srv = nginx.start {
  log_level = "warn",
  http = "lua_socket_log_errors off;" .. (os.getenv("NGX_BENCH_HTTP") or ""),
  server = "location /run { content_by_lua_block { require('ngx_clients').run() } }",
  files = { ["ngx_clients.lua"] = assert(util.read_file(here .. "/ngx_clients.lua")) },
}

-- NGX_BENCH_HOOK on the worker, started before a run and stopped
-- (SIGINT) after it.
local function hook_start(cmd)
  local h = io.popen(cmd:format(srv.workers[1]) .. " >/dev/null 2>&1 & echo $!")
  local ppid = tonumber(h:read("*l"))
  h:close()
  os.execute("sleep 0.3")
  return ppid
end

local function hook_stop(ppid)
  os.execute(("kill -INT %d; while kill -0 %d 2>/dev/null; do sleep 0.1; done"):format(ppid, ppid))
end

local function run(client)
  local hook = os.getenv("NGX_BENCH_HOOK")
  local ppid = hook and hook_start(hook)
  local res = srv.get(nginx.path("/run", {
    client = client, server = server, d = conc, file = abs, max_inflight = max_inflight,
  }), 600)
  if ppid then hook_stop(ppid) end
  local line = res.status == 200 and res.body:match("^([^\n]*plans_per_s=%d+[^\n]*)")
  if not line then
    error(("ngx_bench: %s: HTTP %s %s\n%s"):format(client, tostring(res.status),
      tostring(res.body), srv.error_log()), 0)
  end
  print(line)
  return tonumber(line:match("plans_per_s=(%d+)")), tonumber(line:match("cpu_us_per_plan=([%d.]+)"))
end

local only = os.getenv("NGX_BENCH_ONLY")
local ok, err = pcall(function()
  local peer, peer_cpu, mx, mx_cpu
  if only ~= "mxroute" then peer, peer_cpu = run("peer") end
  if only ~= "peer" then mx, mx_cpu = run("mxroute") end
  if peer and mx then
    print(("mxroute.ngx / cosocket peer: ratio=%.2f cpu_ratio=%.2f"):format(
      mx / peer, mx_cpu / peer_cpu))
  end
end)
srv.stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
