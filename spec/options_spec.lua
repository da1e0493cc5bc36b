-- mxroute.options: every check names the failing field as data (the
-- third value), so that callers (the CLI) need not read the message.
local options = require "mxroute.options"

describe("mxroute.options", function()
  local W = "mxroute.resolver"

  local function field_of(opts)
    local set, msg, field = options.resolver(opts, W)
    assert.is_nil(set)
    assert.equal("string", type(msg))
    return field, msg
  end

  it("names the field of a bad value, whichever layer checks it", function()
    assert.equal("tries", field_of { tries = 0 })
    assert.equal("timeout", field_of { timeout = 3000 })
    assert.equal("nameservers", field_of { nameservers = "300.1.1.1" })
    assert.equal("max_inflight", field_of { max_inflight = 0.5 })
    assert.equal("health", field_of { health = 0 })
    assert.equal("dns0x20", field_of { dns0x20 = "yes" })
    assert.equal("on_query", field_of { on_query = true })
    assert.equal("cache", field_of { cache = { size = 0 } })
    -- the planner's fields are checked in C (csrc/lopts.c)
    assert.equal("family", field_of { family = "ipv5" })
    assert.equal("self", field_of { self = { "*" } })
    assert.equal("ignore_targets", field_of { ignore_targets = { "10.0.0.0/99" } })
    assert.equal("max_hosts", field_of { max_hosts = 0 })
    assert.equal("routes", field_of { routes = 42 })
    assert.equal("bogus", field_of { bogus = 1 })
  end)

  it("keeps the messages of the checks", function()
    local _, msg = field_of { tries = 21 }
    assert.equal("mxroute.resolver: option 'tries': expected an integer 1..20", msg)
    _, msg = field_of { udp_queries = 65536 }
    assert.equal("mxroute.resolver: option 'udp_queries': expected an integer 1..65535", msg)
    _, msg = field_of { health = 0 / 0 }
    assert.equal("mxroute.resolver: option 'health': expected seconds, more than 0 and at most 86400", msg)
  end)

  it("reads every option from the one table of csrc/lopts.c", function()
    local core = require "mxroute.core"
    local KINDS = { boolean = 1, integer = 1, seconds = 1, oneof = 1, ["function"] = 1,
                    names = 1, cidrs = 1, nameservers = 1, cache = 1, routes = 1,
                    wait = 1, shared_dict = 1 }
    local LAYERS = { plan = 1, resolver = 1, mxroute = 1, ngx = 1, cache = 1 }
    assert.equal(core.options, options.LIST)
    for _, f in ipairs(options.LIST) do
      assert.equal(f, options.FIELDS[f.name])
      assert.truthy(KINDS[f.kind], f.name)
      assert.truthy(LAYERS[f.layer], f.name)
      assert.equal(f.layer == "plan" or nil, f.plan)
      assert.equal("string", type(f.help), f.name)
      if f.flag then assert.matches("^%-%-[a-z-]+$", f.flag) end
    end
    assert.equal("--ignore-targets", options.FIELDS.ignore_targets.flag)
  end)

  it("checks every integer and seconds option against its range in the table", function()
    local core = require "mxroute.core"
    local n = 0
    for _, f in ipairs(options.LIST) do
      if f.kind == "integer" then
        n = n + 1
        assert.equal(f.min, core.option_check(f.name, f.min))
        assert.equal(f.max, core.option_check(f.name, f.max))
        local bads = { f.max < 2 ^ 53 and f.min + 0.5 or 0.5, tostring(f.min), 0 / 0 }
        if f.max < 2 ^ 53 then bads[#bads + 1], bads[#bads + 2] = f.min - 1, f.max + 1 end
        for _, bad in ipairs(bads) do
          local ok, why = core.option_check(f.name, bad)
          assert.is_nil(ok, f.name)
          assert.matches("^expected an integer", why)
        end
      elseif f.kind == "seconds" then
        n = n + 1
        assert.equal(f.max, core.option_check(f.name, f.max))
        assert.is_nil(core.option_check(f.name, 0))
        assert.matches(("more than %d seconds"):format(f.max),
                       select(2, core.option_check(f.name, f.max + 1)), 1, true)
      end
    end
    assert.truthy(n >= 10)
    assert.has_error(function() core.option_check("nameservers", {}) end)
  end)

  it("gets a bad planner field's name from the C reader as data", function()
    local core = require "mxroute.core"
    assert.same({ nil, "expected an integer 1..1000000", "max_hosts" }, { core.opts { max_hosts = 0 } })
    assert.same({ nil, 'expected "any", "ipv4" or "ipv6"', "family" }, { core.opts { family = 4 } })
    assert.same({ nil, "not a host name or address: '*'", "self" }, { core.opts { self = "*" } })
    assert.same({ nil, "mxroute.plan: option 'seed': expected an integer", "seed" },
                { options.plan({ seed = 0.5 }, "mxroute.plan") })
    assert.truthy(core.opts { seed = 1, family = "ipv6", max_hosts = 2, self = { "mx.test" } })
  end)

  it("gives each resolver's own field on the other its message, and the planner none", function()
    local _, msg, field = options.resolver({ shared_dict = "d" }, W)
    assert.equal("shared_dict", field)
    assert.equal(W .. ": option 'shared_dict': only mxroute.ngx resolvers share RRsets,"
                 .. " through a lua_shared_dict", msg)
    _, msg, field = options.resolver({ wait = "yield" }, "mxroute.ngx.resolver", "ngx")
    assert.equal("wait", field)
    assert.equal("mxroute.ngx.resolver: option 'wait' does not apply: mxroute.ngx always"
                 .. " waits on cosockets", msg)
    _, msg, field = options.plan({ wait = "yield" }, "mxroute.plan")
    assert.equal("wait", field)
    assert.equal("mxroute.plan: unknown option 'wait'", msg)
    _, msg = options.plan({ tries = 2 }, "mxroute.plan")
    assert.equal("mxroute.plan: unknown option 'tries'", msg)
  end)

  it("checks mxroute.ngx's options with the same function, leaving it its own", function()
    local seen
    local own = { shared_dict = function(v, _, name, set)
      seen = { v, name, set.cache }
      return v
    end }
    local set = assert(options.resolver({ shared_dict = "mxr", tries = 2, family = "ipv4" },
                                        "mxroute.ngx.resolver", "ngx", own))
    assert.same({ "mxr", "shared_dict", {} }, seen)
    assert.equal("mxr", set.shared_dict)
    assert.equal(2, set.tries)
    local _, msg, field = options.resolver({ tries = 0 }, "mxroute.ngx.resolver", "ngx", own)
    assert.equal("tries", field)
    assert.equal("mxroute.ngx.resolver: option 'tries': expected an integer 1..20", msg)
  end)

  it("returns the settings of good options", function()
    local set = assert(options.resolver({ nameservers = "127.0.0.1:5353",
                                          timeout = 1.5, tries = 2, dns0x20 = true,
                                          on_query = print }, W))
    assert.same({ servers = "127.0.0.1:5353", timeout_ms = 1500, tries = 2,
                  dns0x20 = true, trace = true }, set.engine)
    assert.same({}, set.cache)
    assert.truthy(set.planner)
  end)
end)
