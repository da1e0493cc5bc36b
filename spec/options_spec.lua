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

  it("derives the field lists and the command-line flags from one table", function()
    for name, f in pairs(options.FIELDS) do
      assert.equal(f.plan and true or nil, options.PLAN_FIELDS[name])
      assert.equal(not f.plan or nil, options.RESOLVER_FIELDS[name])
      if f.flag then assert.matches("^%-%-[a-z-]+$", f.flag) end
    end
    assert.equal("--ignore-targets", options.FIELDS.ignore_targets.flag)
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
