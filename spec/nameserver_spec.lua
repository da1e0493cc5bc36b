-- One strict nameserver parser everywhere: the C parser (mxr_server_parse,
-- exposed as core.nameserver) behind the options of mxroute.resolver, the
-- CLI's --nameserver and mxroute.ngx, with the same message in each; lists
-- with holes refused for every list option; a NUL in any string argument
-- an error naming the field; self entries are names or addresses; a
-- resolv.conf that is no regular file refused, never read blocking.
local core = require "mxroute.core"
local mxroute = require "mxroute"
local cli = require "mxroute.cli"
local nginx = require "support.nginx"
local util = require "support.util"
local cjson = require "cjson"

-- Accepted, with the canonical form every layer hands on.
local GOOD = {
  { "192.0.2.1", "192.0.2.1:53", "192.0.2.1", 53 },
  { "192.0.2.1:5353", "192.0.2.1:5353", "192.0.2.1", 5353 },
  { "127.0.0.1:65535", "127.0.0.1:65535", "127.0.0.1", 65535 },
  { "2001:db8::1", "[2001:db8::1]:53", "2001:db8::1", 53 },
  { "[2001:db8::1]", "[2001:db8::1]:53", "2001:db8::1", 53 },
  { "[2001:DB8:0::1]:5353", "[2001:db8::1]:5353", "2001:db8::1", 5353 },
  { "::ffff:192.0.2.1", "[::ffff:192.0.2.1]:53", "::ffff:192.0.2.1", 53 },
}

-- Refused, with the words of the one message saying why. The first
-- three are where the three parsers of old disagreed.
local BAD = {
  { "01.2.3.4", "is not an IP address with an optional port" },
  { "127.0.0.1:", "port must be 1..65535" },
  { "::::", "is not an IP address with an optional port" },
  { "0.0.0.0", "is unspecified, broadcast or multicast" },
  { "255.255.255.255", "is unspecified, broadcast or multicast" },
  { "224.0.0.1", "is unspecified, broadcast or multicast" },
  { "ff02::1", "is unspecified, broadcast or multicast" },
  { "::", "is unspecified, broadcast or multicast" },
  { "[::]:53", "is unspecified, broadcast or multicast" },
  { "127.0.0.1:0", "port must be 1..65535" },
  { "127.0.0.1:65536", "port must be 1..65535" },
  { "[::1]:65536", "port must be 1..65535" },
  { "[192.0.2.1]", "brackets are for IPv6 addresses" },
  { "[192.0.2.1]:53", "brackets are for IPv6 addresses" },
  { "ns.example.test", "is not an IP address with an optional port" },
  { "127.0.0.1\0:53", "contains a NUL byte" },
  { "", "empty nameserver" },
}

-- The message of the one parser for s.
local function why(s)
  local name, message = core.nameserver(s)
  assert(name == nil, "expected a refusal for " .. s)
  return message
end

-- The error message of f(...), without the "file:line: " of a Lua error.
local function raised(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return (tostring(e):gsub("^[^:\n]*:%d+: ", ""))
end

describe("core.nameserver (the one parser, in C)", function()
  it("gives the canonical IP:PORT, the address and the port", function()
    for _, c in ipairs(GOOD) do
      local name, addr, port = core.nameserver(c[1])
      assert.equal(c[2], name, c[1])
      assert.equal(c[3], addr, c[1])
      assert.equal(c[4], port, c[1])
    end
  end)

  it("refuses with nil and a message that names the nameserver and why", function()
    for _, c in ipairs(BAD) do
      local name, message = core.nameserver(c[1])
      assert.is_nil(name, c[1])
      assert.truthy(message:find(c[2], 1, true), c[1] .. ": " .. message)
      assert.truthy(message:find("nameserver", 1, true), message)
    end
    assert.equal("nameserver '127.0.0.1\\x00:53' contains a NUL byte", why("127.0.0.1\0:53"))
  end)

  it("refuses what is not a string with a message", function()
    local name, message = core.nameserver(53)
    assert.is_nil(name)
    assert.equal("nameserver must be a string, not a number", message)
  end)
end)

describe("mxroute.resolver nameservers", function()
  it("takes every accepted form", function()
    local list = {}
    for i, c in ipairs(GOOD) do list[i] = c[1] end
    mxroute.resolver({ nameservers = list }):close()
  end)

  it("raises with the parser's message for every refused form", function()
    for _, c in ipairs(BAD) do
      assert.equal("mxroute.resolver: option 'nameservers': " .. why(c[1]),
                   raised(mxroute.resolver, { nameservers = { "127.0.0.1", c[1] } }))
    end
  end)

  it("refuses a list with holes, a sparse list or other keys", function()
    assert.equal("mxroute.resolver: option 'nameservers': expected a list without holes (entry 2 is missing)",
                 raised(mxroute.resolver, { nameservers = { "127.0.0.1", nil, "127.0.0.2" } }))
    assert.equal("mxroute.resolver: option 'nameservers': expected a list without holes (entry 1 is missing)",
                 raised(mxroute.resolver, { nameservers = { [2] = "127.0.0.1" } }))
    assert.equal("mxroute.resolver: option 'nameservers': expected a list (a key is not an index 1..n)",
                 raised(mxroute.resolver, { nameservers = { "127.0.0.1", x = "127.0.0.2" } }))
  end)
end)

describe("the other list options", function()
  local D = { domain = "example.test", mx = false, addrs = { ["example.test"] = { "192.0.2.1" } } }

  it("refuse holes in self and ignore_targets, for a resolver and for mxroute.plan", function()
    for _, field in ipairs { "self", "ignore_targets" } do
      local v = field == "self" and "192.0.2.9" or "10.0.0.0/8"
      local msg = "option '" .. field .. "': expected a list without holes (entry 2 is missing)"
      assert.equal("mxroute.resolver: " .. msg,
                   raised(mxroute.resolver, { nameservers = "127.0.0.1", [field] = { v, nil, v } }))
      assert.equal("mxroute.plan: " .. msg, raised(mxroute.plan, D, { [field] = { v, nil, v } }))
      assert.equal("mxroute.plan: option '" .. field .. "': expected a list without holes (entry 3 is missing)",
                   raised(mxroute.plan, D, { [field] = { v, v, [4] = v } }))
      assert.equal("mxroute.plan: option '" .. field .. "': expected a list (a key is not an index 1..n)",
                   raised(mxroute.plan, D, { [field] = { v, name = v } }))
    end
  end)

  it("refuse a self entry that is no host name or address", function()
    for _, s in ipairs { "*", "*.example.test", "mx?.example.test", "a b" } do
      assert.equal("mxroute.plan: option 'self': not a host name or address: '" .. s .. "'",
                   raised(mxroute.plan, D, { self = { s } }))
      assert.truthy(raised(mxroute.resolver, { nameservers = "127.0.0.1", self = { s } })
                    :find("option 'self': not a host name or address", 1, true))
    end
    assert.equal(1, #mxroute.plan(D, { self = { "mx-1_a.example.test" } }).targets)
  end)
end)

describe("a NUL in a string argument", function()
  local D = { domain = "example.test", mx = { { pref = 10, name = "mx.example.test" } },
              addrs = { ["mx.example.test"] = { "192.0.2.1" } } }
  local function with(k, v)
    local t = {}
    for key, x in pairs(D) do t[key] = x end
    t[k] = v
    return t
  end

  it("is an error naming the option", function()
    assert.equal("mxroute.plan: option 'self': 'us\\x00.example.test' contains a NUL byte",
                 raised(mxroute.plan, D, { self = { "us\0.example.test" } }))
    assert.equal("mxroute.plan: option 'self': '192.0.2.1\\x00' contains a NUL byte",
                 raised(mxroute.plan, D, { self = "192.0.2.1\0" }))
    assert.equal("mxroute.plan: option 'ignore_targets': '10.0.0.0/8\\x00' contains a NUL byte",
                 raised(mxroute.plan, D, { ignore_targets = { "10.0.0.0/8\0" } }))
    assert.equal("mxroute.plan: option 'family': 'ipv4\\x00' contains a NUL byte",
                 raised(mxroute.plan, D, { family = "ipv4\0" }))
    assert.equal("mxroute.plan: option 'prefer': 'ipv6\\x00x' contains a NUL byte",
                 raised(mxroute.plan, D, { prefer = "ipv6\0x" }))
    assert.equal("mxroute.resolver: option 'family': 'any\\x00' contains a NUL byte",
                 raised(mxroute.resolver, { nameservers = "127.0.0.1", family = "any\0" }))
  end)

  it("is an error naming the field in mxroute.plan's records", function()
    assert.equal("mxroute.plan: records.cname 'alias.example.test\\x00.evil' contains a NUL byte",
                 raised(mxroute.plan, with("cname", "alias.example.test\0.evil"), nil))
    assert.equal("mxroute.plan: mx[1].name 'mx.example.test\\x00' contains a NUL byte",
                 raised(mxroute.plan, with("mx", { { pref = 10, name = "mx.example.test\0" } })))
    assert.equal("mxroute.plan: records.addrs key 'mx.example.test\\x00x' contains a NUL byte",
                 raised(mxroute.plan, with("addrs", { ["mx.example.test\0x"] = { "192.0.2.1" } })))
    assert.equal("mxroute.plan: addrs['mx.example.test'][1] '192.0.2.1\\x00' contains a NUL byte",
                 raised(mxroute.plan, with("addrs", { ["mx.example.test"] = { "192.0.2.1\0" } })))
    assert.equal("mxroute.plan: records.mx 'SERVFAIL\\x00' contains a NUL byte",
                 raised(mxroute.plan, with("mx", "SERVFAIL\0")))
    assert.equal("mxroute.plan: records.addrs['mx.example.test'] 'NXDOMAIN\\x00' contains a NUL byte",
                 raised(mxroute.plan, with("addrs", { ["mx.example.test"] = "NXDOMAIN\0" })))
  end)

  it("is an error naming the argument of the transport-facing calls", function()
    local q = core.res("example.test", core.opts { seed = 1 })
    local slot = assert(q:next())
    assert.equal("mxroute: fail 'TIMEOUT\\x00' contains a NUL byte",
                 raised(q.fail, q, slot, "TIMEOUT\0"))
    assert.equal("mxroute: servers '127.0.0.1:53\\x00,0.0.0.0' contains a NUL byte",
                 raised(core.engine, { servers = "127.0.0.1:53\0,0.0.0.0" }))
  end)

  it("in an input is invalid input, BADNAME, with no query sent", function()
    local p, msg, code = mxroute.plan(with("domain", "example.test\0.evil"))
    assert.is_nil(p)
    assert.equal("BADNAME", code)
    assert.truthy(msg:find("NUL byte", 1, true), msg)
  end)
end)

describe("mxroute --nameserver", function()
  it("hands on the canonical IP:PORT", function()
    for _, c in ipairs(GOOD) do
      local cfg = assert(cli.parse { "--nameserver", c[1], "x" })
      assert.same({ c[2] }, cfg.resolver.nameservers)
    end
  end)

  it("refuses with the parser's message", function()
    for _, c in ipairs(BAD) do
      local cfg, msg = cli.parse { "--nameserver", c[1], "x" }
      assert.is_nil(cfg)
      local shown = c[1]:gsub("%z", "\\x00")
      assert.equal("bad value '" .. shown .. "' for --nameserver: " .. why(c[1]), msg)
    end
  end)
end)

describe("mxroute (the command)", function()
  local function main(args)
    local text = { out = {}, err = {} }
    local function sink(t) return { write = function(_, ...) for _, x in ipairs { ... } do t[#t + 1] = x end end } end
    local status = cli.main(args, sink(text.out), sink(text.err))
    return table.concat(text.out), table.concat(text.err), status
  end

  it("exits 64 with the parser's message for a bad --nameserver, resolving nothing", function()
    for _, v in ipairs { "01.2.3.4", "127.0.0.1:", "::::", "0.0.0.0" } do
      local out, err, status = main { "--nameserver", v, "example.test" }
      assert.equal(64, status, v)
      assert.equal("", out)
      assert.equal("mxroute: bad value '" .. v .. "' for --nameserver: " .. why(v) .. "\n", err:match("^[^\n]*\n"))
    end
  end)

  it("exits 64 for --self '*'", function()
    local out, err, status = main { "--nameserver", "127.0.0.1:9", "--self", "*", "example.test" }
    assert.equal(64, status)
    assert.equal("", out)
    assert.truthy(err:find("bad value for --self: mxroute.resolver: option 'self': not a host name or address: '*'",
                           1, true), err)
  end)
end)

describe("core.read_regular_file", function()
  local dir = os.getenv("MXR_TEST_TMP") or "/tmp"
  local fifo = dir .. "/nameserver_spec.fifo." .. tostring(os.time()) .. "." .. tostring(math.random(1e6))

  setup(function()
    assert(util.execute("mkfifo " .. util.quote(fifo)))
  end)
  teardown(function() os.remove(fifo) end)

  it("reads a regular file", function()
    local path = dir .. "/nameserver_spec.conf"
    util.write_file(path, "nameserver 192.0.2.53\n")
    assert.equal("nameserver 192.0.2.53\n", core.read_regular_file(path))
    os.remove(path)
  end)

  it("refuses a FIFO at once, without waiting for a writer", function()
    local text, msg, code = core.read_regular_file(fifo)
    assert.is_nil(text)
    assert.equal(fifo .. " is a FIFO, not a regular file: not read", msg)
    assert.equal("NOTREGULAR", code)
  end)

  it("refuses a device and a directory", function()
    local _, msg, code = core.read_regular_file("/dev/zero")
    assert.equal("/dev/zero is a character device, not a regular file: not read", msg)
    assert.equal("NOTREGULAR", code)
    _, msg, code = core.read_regular_file(dir)
    assert.equal(dir .. " is a directory, not a regular file: not read", msg)
    assert.equal("NOTREGULAR", code)
  end)

  it("says ENOENT for a missing file", function()
    local text, msg, code = core.read_regular_file(dir .. "/no/such/file")
    assert.is_nil(text)
    assert.truthy(msg:find("No such file", 1, true), msg)
    assert.equal("ENOENT", code)
  end)
end)

-- The same checks inside nginx, through mxroute.ngx's Lua-side options.
local function lua_list(list)
  local out = {}
  for i, c in ipairs(list) do out[i] = ("%q"):format(c[1]) end
  return "{ " .. table.concat(out, ", ") .. " }"
end

local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"
local M = {}

local function raised(f, ...)
  local ok, e = pcall(f, ...)
  return ok and "no error" or tostring(e)
end

function M.options()
  local out = { bad = {}, good = {} }
  for i, s in ipairs(BAD) do
    out.bad[i] = raised(mxngx.resolver, { nameservers = { "127.0.0.1", s } })
  end
  for i, s in ipairs(GOOD) do
    out.good[i] = mxngx.resolver({ nameservers = { s } }):nameservers()[1]
  end
  out.holes = raised(mxngx.resolver, { nameservers = { "127.0.0.1", nil, "127.0.0.2" } })
  out.self_holes = raised(mxngx.resolver, { nameservers = "127.0.0.1", self = { "a.test", nil, "b.test" } })
  out.star = raised(mxngx.resolver, { nameservers = "127.0.0.1", self = { "*" } })
  out.nul = raised(mxngx.resolver, { nameservers = "127.0.0.1", self = { "us\0.test" } })
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(out))
end

function M.resolvconf()
  local list, msg, code = mxngx.read_resolv_conf(ngx.req.get_uri_args().path)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ list = list or cjson.null, message = msg or cjson.null,
                         code = code or cjson.null }))
end

return M
]==]

describe("mxroute.ngx (in nginx)", function()
  local srv
  local dir = os.getenv("MXR_TEST_TMP") or "/tmp"
  local fifo = dir .. "/nameserver_spec.ngx.fifo." .. tostring(os.time()) .. "." .. tostring(math.random(1e6))

  setup(function()
    assert(util.execute("mkfifo " .. util.quote(fifo)))
    local app = "local BAD, GOOD = " .. lua_list(BAD) .. ", " .. lua_list(GOOD) .. "\n" .. APP
    srv = nginx.start {
      server = [[
        location = /options { content_by_lua_block { require("nstest").options() } }
        location = /resolvconf { content_by_lua_block { require("nstest").resolvconf() } }
      ]],
      files = { ["nstest.lua"] = app },
    }
  end)

  teardown(function()
    if srv then srv.stop() end
    os.remove(fifo)
  end)

  local function get_json(path, args)
    local res = srv.get(nginx.path(path, args))
    assert.equal(200, res.status, path .. ": " .. tostring(res.body))
    return cjson.decode(res.body)
  end

  it("checks nameservers, list holes, self and NUL like the other layers", function()
    local out = get_json("/options")
    for i, c in ipairs(BAD) do
      assert.equal("mxroute.ngx.resolver: option 'nameservers': " .. why(c[1]),
                   (out.bad[i]:gsub("^[^:\n]*:%d+: ", "")))
    end
    for i, c in ipairs(GOOD) do assert.equal(c[2], out.good[i]) end
    local function says(got, want) assert.truthy(got:find(want, 1, true), got) end
    local W = "mxroute.ngx.resolver: option "
    says(out.holes, W .. "'nameservers': expected a list without holes (entry 2 is missing)")
    says(out.self_holes, W .. "'self': expected a list without holes (entry 2 is missing)")
    says(out.star, W .. "'self': not a host name or address: '*'")
    says(out.nul, W .. "'self': 'us\\x00.test' contains a NUL byte")
  end)

  it("refuses a resolv.conf that is a FIFO, without blocking the worker", function()
    local out = get_json("/resolvconf", { path = fifo })
    assert.equal(cjson.null, out.list)
    assert.equal(fifo .. " is a FIFO, not a regular file: not read", out.message)
    assert.equal("NOTREGULAR", out.code)
  end)

  it("reads a regular resolv.conf with the same parser, skipping unroutable servers", function()
    local path = dir .. "/nameserver_spec.resolv.conf"
    util.write_file(path, "nameserver 0.0.0.0\nnameserver 01.2.3.4\nnameserver 192.0.2.53\n"
                    .. "nameserver ff02::1\nnameserver 2001:db8::53\n")
    local out = get_json("/resolvconf", { path = path })
    assert.same({ "192.0.2.53:53", "[2001:db8::53]:53" }, out.list)
    out = get_json("/resolvconf", { path = dir .. "/no-such-resolv.conf" })
    assert.same({ "127.0.0.1:53" }, out.list)
    os.remove(path)
  end)
end)
