-- Input forms accepted by the planner (DESIGN section 1, "Input"): bare
-- domains, local@domain, address literals, and the many ways an input is
-- invalid (BADNAME, with a message that says what is wrong).
local mxroute = require "mxroute"
local plans = require "support.plans"

local ADDRS = { ["mx.example.com"] = { "192.0.2.1" } }
local MX = { { pref = 10, name = "mx.example.com" } }

-- A plan of one MX host for whatever domain the input names.
local function plan_for(input, opts)
  return mxroute.plan({ domain = input, mx = MX, addrs = ADDRS }, opts)
end

local function ok_plan(input, opts)
  local p, msg, code = plan_for(input, opts)
  assert(p, ("%q: expected a plan, got %s: %s"):format(input, tostring(code),
                                                       tostring(msg)))
  return p
end

local docplan = plans.doc

local function printable(s)
  return (s:gsub("[^\32-\126]", function(c)
    return ("\\%03d"):format(c:byte())
  end))
end

-- s with every plain occurrence of part removed.
local function without(s, part)
  if part == "" then return s end
  local out, i = {}, 1
  while true do
    local a, b = s:find(part, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    i = b + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

describe("mxroute.plan input", function()

  describe("accepted forms", function()
    local mx_plan = {
      domain = "example.com", implicit = false,
      hosts = { { name = "mx.example.com", pref = 10, addrs = { "192.0.2.1" } } },
      targets = { { host = "mx.example.com", pref = 10, addr = "192.0.2.1",
                    family = "ipv4" } },
      skipped = {},
    }
    local function expect(input)
      local want = {}
      for k, v in pairs(mx_plan) do want[k] = v end
      want.input = input
      return want
    end

    it("takes the domain of user@domain", function()
      assert.same(expect("user@example.com"),
                  docplan(ok_plan("user@example.com")))
    end)

    it("takes a bare domain", function()
      assert.same(expect("example.com"), docplan(ok_plan("example.com")))
    end)

    it("treats a trailing dot on a bare domain as the same domain", function()
      local a = docplan(ok_plan("example.com.", { seed = 3 }))
      local b = docplan(ok_plan("example.com", { seed = 3 }))
      assert.equal("example.com.", a.input)
      assert.equal("example.com", a.domain)
      a.input, b.input = nil, nil
      assert.same(b, a)
    end)

    it("folds the domain to lower case and keeps the input as given",
       function()
      assert.same(expect("User@Example.COM"),
                  docplan(ok_plan("User@Example.COM")))
      assert.same(expect("EXAMPLE.COM."), docplan(ok_plan("EXAMPLE.COM.")))
    end)

    it("uses the domain after the last @ of a quoted local part", function()
      assert.equal("example.com", ok_plan('"john@doe"@example.com').domain)
      assert.equal("example.com", ok_plan('"john doe"@example.com').domain)
    end)

    local valid = {
      { "first.last@example.com", "example.com" },
      { "user+tag@sub.example.com", "sub.example.com" },
      { "o'brien@example.com", "example.com" },
      { "x@a.b", "a.b" },
      { "3com.com", "3com.com" },
      { "a-b.c-d.example", "a-b.c-d.example" },
      { "xn--bcher-kva.example", "xn--bcher-kva.example" },
      { "localhost", "localhost" },
      { "example.123a", "example.123a" },
      { ("a"):rep(63) .. ".test", ("a"):rep(63) .. ".test" },
    }
    for _, case in ipairs(valid) do
      it("accepts " .. case[1]:sub(1, 40) .. " as domain " ..
         case[2]:sub(1, 40), function()
        assert.equal(case[2], ok_plan(case[1]).domain)
      end)
    end

    it("accepts a name of exactly 253 octets, with or without the dot",
       function()
      local name = ("a"):rep(63) .. "." .. ("b"):rep(63) .. "." ..
                   ("c"):rep(63) .. "." .. ("d"):rep(61)
      assert.equal(253, #name)
      assert.equal(name, ok_plan(name).domain)
      assert.equal(name, ok_plan(name .. ".").domain)
      assert.equal(name, ok_plan("u@" .. name).domain)
    end)
  end)

  describe("address literals", function()
    it("plans [192.0.2.1] as one host and one target, with no MX", function()
      local p, msg, code = mxroute.plan { domain = "[192.0.2.1]" }
      assert(p, tostring(code) .. ": " .. tostring(msg))
      local d = docplan(p)
      assert.equal("[192.0.2.1]", d.input)
      assert.equal("[192.0.2.1]", d.domain)
      assert.equal(1, #d.hosts)
      assert.equal(0, d.hosts[1].pref)
      assert.same({ "192.0.2.1" }, d.hosts[1].addrs)
      assert.same({ { host = d.hosts[1].name, pref = 0, addr = "192.0.2.1",
                      family = "ipv4" } }, d.targets)
    end)

    it("plans user@[192.0.2.1] without looking at MX or addresses",
       function()
      local p = assert(mxroute.plan {
        domain = "user@[192.0.2.1]", mx = "SERVFAIL",
        addrs = { ["[192.0.2.1]"] = "SERVFAIL" },
      })
      assert.equal("[192.0.2.1]", p.domain)
      assert.same({ "192.0.2.1" }, p.hosts[1].addrs)
      assert.equal(1, #p.targets)
    end)

    it("plans [IPv6:2001:DB8::1] with the address in canonical form",
       function()
      local p, msg, code = mxroute.plan { domain = "user@[IPv6:2001:DB8::1]" }
      assert(p, tostring(code) .. ": " .. tostring(msg))
      local d = docplan(p)
      assert.equal("user@[IPv6:2001:DB8::1]", d.input)
      assert.equal("[IPv6:2001:db8::1]", d.domain)
      assert.equal(1, #d.hosts)
      assert.same({ "2001:db8::1" }, d.hosts[1].addrs)
      assert.same({ { host = d.hosts[1].name, pref = 0, addr = "2001:db8::1",
                      family = "ipv6" } }, d.targets)
    end)

    it("accepts the IPv6 tag in any case", function()
      local p = assert(mxroute.plan { domain = "[ipv6:2001:db8::2]" })
      assert.same({ "2001:db8::2" }, p.hosts[1].addrs)
    end)

    it("applies the target guard to a literal", function()
      local p, _, code = mxroute.plan { domain = "user@[127.0.0.1]" }
      assert.is_nil(p)
      assert.equal("NOHOSTS", code)
      local q = assert(mxroute.plan({ domain = "user@[127.0.0.1]" },
                                    { ignore_targets = {} }))
      assert.same({ "127.0.0.1" }, q.hosts[1].addrs)
    end)

    it("is LOOP when the literal is our own address", function()
      local p, _, code = mxroute.plan({ domain = "[192.0.2.5]" },
                                      { self = { "192.0.2.5" } })
      assert.is_nil(p)
      assert.equal("LOOP", code)
    end)
  end)

  describe("invalid input", function()
    -- input, then Lua patterns (lower-cased message) any one of which must
    -- match: the message has to say what is wrong.
    local long_label = ("a"):rep(64) .. ".test"
    local long_name = ("a"):rep(63) .. "." .. ("b"):rep(63) .. "." ..
                      ("c"):rep(63) .. "." .. ("d"):rep(62)
    local bad = {
      { "", { "empty" } },
      { "user@", { "empty", "missing", "no domain" } },
      { "@x.test", { "local", "empty" } },
      { "a@@b.test", { "@", "local", "character" } },
      { "a..b", { "empty label", "label", "%.%." } },
      { long_label, { "label", "63" } },
      { long_name, { "long", "253" } },
      { "u@" .. long_name, { "long", "253" } },
      { "exa\0mple.com", { "nul", "character", "control" } },
      { "ex\195\164mple.com", { "ascii", "character", "byte" } },
      { "exa mple.com", { "character", "space" } },
      { "user@exa mple.com", { "character", "space" } },
      { "a b@example.com", { "local", "character", "space" } },
      { "123.45", { "digit", "numeric", "number", "literal" } },
      { "192.0.2.1", { "digit", "numeric", "number", "literal", "bracket" } },
      { "-lead.example.com", { "hyphen", "label", "character" } },
      { "example.-com", { "hyphen", "label", "character" } },
      { "trail-.example.com", { "hyphen", "label", "character" } },
      { "u@example.com.", { "dot", "trailing" } },
      { ".", { "empty", "label", "dot", "root" } },
      { ".example.com", { "empty label", "label", "dot" } },
      { "example.com..", { "empty label", "label", "dot" } },
      { "exa_mple.com", { "character", "_" } },
      { "example.com:25", { "character", ":" } },
      { "exa\tmple.com", { "character", "control", "tab" } },
      { "example.com\n", { "character", "control", "newline" } },
      { "us..er@example.com", { "local" } },
      { ".user@example.com", { "local" } },
      { "user.@example.com", { "local" } },
      { '"unterminated@example.com', { "local", "quot" } },
      { "user@[192.0.2.1", { "literal", "bracket", "%]" } },
      { "user@[300.0.0.1]", { "literal", "address" } },
      { "user@[1.2.3]", { "literal", "address" } },
      { "user@[IPv6:2001:db8::g]", { "literal", "address", "ipv6" } },
      { "user@[IPv6:192.0.2.1]", { "literal", "address", "ipv6" } },
      { "user@[2001:db8::1]", { "literal", "address", "ipv6" } },
      { "user@[192.0.2.1].", { "literal", "dot", "trailing", "character" } },
      { "user@[]", { "literal", "empty", "address" } },
    }

    for _, case in ipairs(bad) do
      local input, patterns = case[1], case[2]
      it("rejects \"" .. printable(input):sub(1, 50) .. "\" as BADNAME",
         function()
        local p, msg, code = plan_for(input)
        assert.is_nil(p, "accepted " .. printable(input))
        assert.equal("BADNAME", code)
        assert.equal("string", type(msg))
        assert.is_true(#msg > 0)
        assert.is_nil(msg:find("%c"), "control character in message: " ..
                      printable(msg))
        -- what the message says beyond echoing the input back
        local low, hit = without(msg:lower(), input:lower()), false
        for _, pat in ipairs(patterns) do
          if low:find(pat) then hit = true end
        end
        assert.is_true(hit, "message does not say what is wrong: " .. msg)
      end)
    end

    it("rejects input that is invalid whatever the MX data says", function()
      local p, _, code = mxroute.plan { domain = "user@", mx = "NXDOMAIN" }
      assert.is_nil(p)
      assert.equal("BADNAME", code)
      p, _, code = mxroute.plan { domain = "a..b", mx = false,
                                  addrs = { ["a..b"] = { "192.0.2.1" } } }
      assert.is_nil(p)
      assert.equal("BADNAME", code)
    end)

    it("classes BADNAME as invalid", function()
      assert.equal("invalid", mxroute.class("BADNAME"))
    end)

    it("keeps messages short for very long input", function()
      local p, msg, code = plan_for(("a"):rep(5000))
      assert.is_nil(p)
      assert.equal("BADNAME", code)
      assert.is_true(#msg < 600)
    end)
  end)
end)
