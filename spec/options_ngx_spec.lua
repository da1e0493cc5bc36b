-- mxroute.ngx checks its options with the function mxroute.resolver uses
-- (mxroute.options.resolver, layer "ngx"): the same messages, and the
-- bad field as data, which mxroute.ngx.new returns as its fourth value.
local cjson = require "cjson"
local nginx = require "support.nginx"
local options = require "mxroute.options"

local W = "mxroute.ngx.resolver"

-- One bad field each.
local CASES = {
  { family = "ipx" }, { timeout = 2000 }, { tries = 0 }, { nameservers = { "nonsense" } },
  { bogus = 1 }, { wait = "yield" }, { self = { "*" } }, { cache = { size = 0 } },
  { max_inflight = 0 }, { routes = 42 }, { on_query = true }, { max_hosts = 0 },
  { seed = 0.5 }, { dns0x20 = "yes" }, { ignore_targets = { "10.0.0.0/99" } },
}

local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"
local M = {}
function M.run()
  local out = {}
  for i, opts in ipairs(cjson.decode(ngx.unescape_uri(ngx.var.arg_cases))) do
    local r, err, code, field = mxngx.new(opts)
    local ok, raised = pcall(mxngx.resolver, opts)
    out[i] = { r = r ~= nil, err = err, code = code, field = field,
               raised = not ok and tostring(raised) or nil }
  end
  local r, err, code, field = mxngx.new { nameservers = { "127.0.0.1" }, shared_dict = 5 }
  out[#out + 1] = { r = r ~= nil, err = err, code = code, field = field }
  ngx.say(cjson.encode(out))
end
return M
]==]

describe("mxroute.ngx's options", function()
  local srv

  setup(function()
    srv = nginx.start {
      server = 'location = /new { content_by_lua_block { require("optapp").run() } }',
      files = { ["optapp.lua"] = APP },
    }
  end)

  teardown(function() if srv then srv.stop() end end)

  it("are checked by mxroute.options.resolver: same message, field returned by new()", function()
    local res = srv.get(nginx.path("/new", { cases = cjson.encode(CASES) }))
    assert.equal(200, res.status, res.body)
    local out = cjson.decode(res.body)
    assert.equal(#CASES + 1, #out)
    for i, opts in ipairs(CASES) do
      local set, msg, field = options.resolver(opts, W, "ngx")
      assert.is_nil(set)
      local got = out[i]
      assert.is_false(got.r)
      assert.equal("BADOPT", got.code)
      assert.equal(field, got.field, msg)
      assert.equal(msg, got.err)
      -- resolver() raises the same message
      assert.equal(msg, (got.raised:gsub("^[^:\n]*:%d+: ", "")))
    end
    local dict = out[#out]
    assert.same({ false, "BADOPT", "shared_dict" }, { dict.r, dict.code, dict.field })
    assert.equal(W .. ": option 'shared_dict': expected the name of a lua_shared_dict", dict.err)
  end)
end)
