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
-- the LuaJIT build of the core (build/luajit).
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
  http = "lua_socket_log_errors off;",
  server = "location /run { content_by_lua_block { require('ngx_clients').run() } }",
  files = { ["ngx_clients.lua"] = assert(util.read_file(here .. "/ngx_clients.lua")) },
}

local function run(client)
  local res = srv.get(nginx.path("/run", {
    client = client, server = server, d = conc, file = abs, max_inflight = max_inflight,
  }), 600)
  local line = res.status == 200 and res.body:match("^([^\n]*plans_per_s=%d+[^\n]*)")
  if not line then
    error(("ngx_bench: %s: HTTP %s %s\n%s"):format(client, tostring(res.status),
      tostring(res.body), srv.error_log()), 0)
  end
  print(line)
  return tonumber(line:match("plans_per_s=(%d+)")), tonumber(line:match("cpu_us_per_plan=([%d.]+)"))
end

local ok, err = pcall(function()
  local peer, peer_cpu = run("peer")
  local mx, mx_cpu = run("mxroute")
  print(("mxroute.ngx / cosocket peer: ratio=%.2f cpu_ratio=%.2f"):format(
    mx / peer, mx_cpu / peer_cpu))
end)
srv.stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
