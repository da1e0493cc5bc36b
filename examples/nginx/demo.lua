--- examples/nginx/demo.lua — part of `make demo`: runs the example nginx
-- configuration (examples/nginx/nginx.conf, unchanged but for the port,
-- the nameserver, one worker and its temporary files) and asks it where
-- mail goes over HTTP.
--
--   LUA_PATH='./lua/?.lua;./spec/?.lua;;' lua5.4 examples/nginx/demo.lua NAMESERVER INPUT...
local nginx = require "support.nginx"

local ns = assert(arg[1], "usage: demo.lua NAMESERVER INPUT...")
local repo = nginx.repo()
local fh = assert(io.open(repo .. "/examples/nginx/nginx.conf"))
local original = fh:read("*a")
fh:close()

local function sub(text, from, to)
  local s, n = text:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
  assert(n >= 1, "examples/nginx/nginx.conf has no '" .. from .. "'")
  return s
end

local srv = nginx.start {
  prefix = repo,
  conf = function(tmp, port)
    local text = original
    text = sub(text, "listen 127.0.0.1:8025;", "listen 127.0.0.1:" .. port .. ";")
    text = sub(text, 'set $mxroute_nameservers "127.0.0.1:53";',
               'set $mxroute_nameservers "' .. ns .. '";')
    text = sub(text, "worker_processes auto;", "worker_processes 1;")
    text = sub(text, "pid build/nginx-example.pid;", "pid " .. tmp .. "/nginx.pid;")
    text = sub(text, "build/nginx-example-", tmp .. "/tmp-")
    if io.popen("id -u"):read("*l") == "0" then text = "user root root;\n" .. text end
    return text
  end,
}

print(("nginx (examples/nginx/nginx.conf) listens on 127.0.0.1:%d"):format(srv.port))
for i = 2, #arg do
  local path = nginx.path("/route", { to = arg[i] })
  local res = srv.get(path)
  print(("\n$ GET %s\nHTTP %d%s\n%s"):format(path, res.status,
    res.headers["retry-after"] and (" (Retry-After: " .. res.headers["retry-after"] .. ")") or "",
    (res.body:gsub("%s+$", ""))))
end
srv.stop()
