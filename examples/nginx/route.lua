--- GET /route?to=ADDRESS -> where to deliver mail for ADDRESS, as JSON.
--
-- A content handler for nginx with ngx_lua (OpenResty, or Debian's
-- libnginx-mod-http-lua): `content_by_lua_file .../route.lua;`. The body
-- is the line `mxroute --json ADDRESS` prints: the plan with
-- `"status":"ok"`, or `{"input", "status":"error", "code", "class",
-- "message"}`. HTTP status: 200 for a plan and for a permanent answer
-- (NXDOMAIN, NULLMX, NOHOSTS, LOOP...), 400 for invalid input (BADNAME),
-- 503 with Retry-After for a temporary failure (SERVFAIL, TIMEOUT...).
--
-- Settings, as nginx variables of the location (all optional):
--   $mxroute_nameservers  "IP[:PORT] ..." (default: /etc/resolv.conf)
--   $mxroute_self         our own host names and addresses, "a b ..."
--   $mxroute_timeout      seconds per try (default 2)
--   $mxroute_tries        tries per nameserver (default 3)
local mxngx = require "mxroute.ngx"
local cli = require "mxroute.cli"

local ngx = ngx -- luacheck: ignore 113

local HTTP_STATUS = { invalid = 400, temporary = 503, permanent = 200, loop = 200 }

-- "a b,c" -> { "a", "b", "c" }; nil when empty.
local function words(s)
  if type(s) ~= "string" then return nil end
  local t = {}
  for w in s:gmatch("[^%s,]+") do t[#t + 1] = w end
  return t[1] and t or nil
end

local function number(s)
  return s and s ~= "" and tonumber(s) or nil
end

local function reply(status, o)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if status == 503 then ngx.header["Retry-After"] = "60" end
  ngx.say(cli.format_json(o))
end

local to = ngx.req.get_uri_args().to
if type(to) ~= "string" or to == "" then
  return reply(400, { input = type(to) == "string" and to or "", code = "BADNAME",
                      class = "invalid", message = "expected ?to=ADDRESS (one)" })
end

local var = ngx.var
-- One resolver per request: cheap (no I/O until resolve), and its
-- cosockets live within this handler anyway.
local r = mxngx.resolver {
  nameservers = words(var.mxroute_nameservers),
  self = words(var.mxroute_self),
  timeout = number(var.mxroute_timeout),
  tries = number(var.mxroute_tries),
}
local plan, message, code, info = r:resolve(to)
r:close()

-- the same outcome, and so the same JSON, as `mxroute --json`
local o = cli.outcome(to, mxngx.class, plan, message, code, info)
reply(o.plan and 200 or HTTP_STATUS[o.class] or 503, o)
