-- Error classes of the stable codes (DESIGN section 1, "Error classes"),
-- and that a failing plan reports a code of the right class.
local mxroute = require "mxroute"
local plans = require "support.plans"

local CLASSES = plans.CLASSES

local ORDER = {
  "BADNAME", "BADOPT", "NXDOMAIN", "NODATA", "NULLMX", "NOHOSTS", "IGNORED",
  "TOOMANY", "LOOP", "SERVFAIL", "REFUSED", "TIMEOUT", "FORMERR",
  "CNAMELOOP", "NETWORK", "NOMEM", "CANCELLED", "REJECTED", "DEFERRED", "HOOK",
}

describe("mxroute.class", function()
  for _, code in ipairs(ORDER) do
    it("classes " .. code .. " as " .. CLASSES[code], function()
      assert.equal(CLASSES[code], mxroute.class(code))
    end)
  end

  it("knows exactly the 20 documented codes", function()
    local n = 0
    for _ in pairs(CLASSES) do n = n + 1 end
    assert.equal(20, n)
    assert.equal(20, #ORDER)
  end)

  it("exports exactly the documented codes in mxroute.codes (OK is not a code)", function()
    local n = 0
    for code, class in pairs(mxroute.codes) do
      n = n + 1
      assert.equal(CLASSES[code], class, code)
    end
    assert.equal(20, n)
    assert.has_error(function() mxroute.class("OK") end)
  end)

  it("returns nil, message, code, info from every failing mxroute.plan", function()
    local bad_input = { mxroute.plan { domain = "user@" } }
    local bad_addr = { mxroute.plan { domain = "a.test", mx = { { pref = 1, name = "h.test" } },
                                      addrs = { ["h.test"] = { "not-an-address" } } } }
    for _, r in ipairs { bad_input, bad_addr } do
      assert.is_nil(r[1])
      assert.is_string(r[2])
      assert.is_table(r[4])
      assert.equal(r[3], r[4].code)
      assert.is_table(r[4].skipped)
    end
    assert.equal("BADNAME", bad_input[3])
    assert.equal("FORMERR", bad_addr[3])
  end)

  it("raises misuse at the caller's line, for class and for plan records", function()
    local line = debug.getinfo(1, "l").currentline
    local ok1, e1 = pcall(function() local c = mxroute.class("BOGUS"); return c end)
    local ok2, e2 = pcall(function() local p = mxroute.plan { domain = "a.test", mx = "OK" }; return p end)
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.truthy(tostring(e1):find(":" .. (line + 1) .. ": mxroute.class:", 1, true), e1)
    assert.truthy(tostring(e2):find(":" .. (line + 2) .. ": mxroute.plan:", 1, true), e2)
  end)

  it("does not fold the case of a code", function()
    local ok, class = pcall(mxroute.class, "nxdomain")
    assert.is_false(ok and class == "permanent")
  end)

  it("does not class an unknown code as permanent or invalid", function()
    -- an unknown code must never make an MTA bounce mail
    local ok, class = pcall(mxroute.class, "NOSUCHCODE")
    if ok then
      assert.is_not.equal("permanent", class)
      assert.is_not.equal("invalid", class)
      assert.is_not.equal("loop", class)
    end
  end)

  it("raises for a code that is not a string", function()
    assert.has_error(function() mxroute.class({}) end)
    assert.has_error(function() mxroute.class() end)
  end)

  describe("on failing plans", function()
    local function code_of(records, opts)
      local p, msg, code = mxroute.plan(records, opts)
      assert.is_nil(p)
      assert.equal("string", type(msg))
      return code
    end

    it("gives an invalid code for bad input", function()
      assert.equal("invalid", mxroute.class(code_of { domain = "a@@b.test" }))
    end)

    it("gives a permanent code for a domain that does not exist", function()
      assert.equal("permanent",
                   mxroute.class(code_of { domain = "x.test", mx = "NXDOMAIN" }))
    end)

    it("gives a permanent code for a null MX", function()
      assert.equal("permanent", mxroute.class(code_of {
        domain = "x.test", mx = { { pref = 0, name = "." } } }))
    end)

    it("gives a permanent code when no host has an address", function()
      assert.equal("permanent",
                   mxroute.class(code_of { domain = "x.test", mx = false }))
    end)

    it("gives a loop code when we are the best MX", function()
      assert.equal("loop", mxroute.class(code_of({
        domain = "x.test", mx = { { pref = 10, name = "mx.x.test" } },
        addrs = { ["mx.x.test"] = { "192.0.2.1" } },
      }, { self = { "mx.x.test" } })))
    end)

    for _, code in ipairs { "SERVFAIL", "REFUSED", "TIMEOUT", "NETWORK" } do
      it("gives a temporary code for an MX lookup failing with " .. code,
         function()
        assert.equal("temporary",
                     mxroute.class(code_of { domain = "x.test", mx = code }))
      end)
    end
  end)
end)
