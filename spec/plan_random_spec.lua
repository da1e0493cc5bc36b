-- Randomness of the planner (DESIGN section 1, rules 6 and 7): hosts of
-- equal preference and the addresses of one host come in a uniformly
-- random order; a seed makes a plan reproducible.
--
-- The uniformity bounds are wide (1,000 +- 150 of 6,000 is about five
-- standard deviations) so that a fair shuffle practically never fails
-- them, while a biased one (a sort with a random comparator, an
-- off-by-one Fisher-Yates, no shuffle at all) fails every time.
local mxroute = require "mxroute"

local D = "example.com"
local RUNS, EXPECT, SLACK = 6000, 1000, 150

local HOSTS = {
  domain = D,
  mx = {
    { pref = 10, name = "a.example.com" },
    { pref = 10, name = "b.example.com" },
    { pref = 10, name = "c.example.com" },
  },
  addrs = {
    ["a.example.com"] = { "192.0.2.1" },
    ["b.example.com"] = { "192.0.2.2" },
    ["c.example.com"] = { "192.0.2.3" },
  },
}

local ADDRS = {
  domain = D,
  mx = { { pref = 10, name = "mx.example.com" } },
  addrs = { ["mx.example.com"] = { "192.0.2.1", "192.0.2.2", "192.0.2.3" } },
}

local PERMS = { "abc", "acb", "bac", "bca", "cab", "cba" }

local function host_key(p)
  local k = {}
  for i, h in ipairs(p.hosts) do k[i] = h.name:sub(1, 1) end
  return table.concat(k)
end

local function addr_key(p)
  local k, letters = {}, { ["192.0.2.1"] = "a", ["192.0.2.2"] = "b",
                           ["192.0.2.3"] = "c" }
  for i, a in ipairs(p.hosts[1].addrs) do k[i] = letters[a] or "?" end
  return table.concat(k)
end

-- Counts of each permutation over RUNS plans; opts_for(i) gives the options.
local function tally(records, key, opts_for)
  local counts = {}
  for i = 1, RUNS do
    local p = assert(mxroute.plan(records, opts_for(i)))
    local k = key(p)
    counts[k] = (counts[k] or 0) + 1
  end
  return counts
end

local function assert_uniform(counts)
  local total = 0
  for k, n in pairs(counts) do
    total = total + n
    assert.is_truthy(k:match("^[abc][abc][abc]$"), "bad order " .. k)
  end
  assert.equal(RUNS, total)
  for _, perm in ipairs(PERMS) do
    local n = counts[perm] or 0
    assert.is_true(math.abs(n - EXPECT) <= SLACK,
                   ("order %s seen %d times of %d, expected %d +- %d")
                     :format(perm, n, RUNS, EXPECT, SLACK))
  end
end

local function no_opts() return nil end
local function seed_opts(i) return { seed = i } end

-- Targets must follow the hosts whatever the shuffle (rule 13).
local function same_order(p)
  local k = {}
  for i, t in ipairs(p.targets) do k[i] = t.addr end
  local h = {}
  for _, host in ipairs(p.hosts) do
    for _, a in ipairs(host.addrs) do h[#h + 1] = a end
  end
  return table.concat(k, " ") == table.concat(h, " ")
end

describe("mxroute.plan randomness", function()
  it("puts three hosts of equal preference in each order equally often",
     function()
    assert_uniform(tally(HOSTS, host_key, no_opts))
  end)

  it("shuffles hosts uniformly across seeds too", function()
    assert_uniform(tally(HOSTS, host_key, seed_opts))
  end)

  it("puts three addresses of one host in each order equally often",
     function()
    assert_uniform(tally(ADDRS, addr_key, no_opts))
  end)

  it("shuffles addresses uniformly across seeds too", function()
    assert_uniform(tally(ADDRS, addr_key, seed_opts))
  end)

  it("shuffles only within a preference level", function()
    local records = {
      domain = D,
      mx = {
        { pref = 20, name = "c.example.com" },
        { pref = 10, name = "a.example.com" },
        { pref = 20, name = "d.example.com" },
        { pref = 10, name = "b.example.com" },
      },
      addrs = {
        ["a.example.com"] = { "192.0.2.1" }, ["b.example.com"] = { "192.0.2.2" },
        ["c.example.com"] = { "192.0.2.3" }, ["d.example.com"] = { "192.0.2.4" },
      },
    }
    local seen = {}
    for _ = 1, 400 do
      local p = assert(mxroute.plan(records))
      local k = host_key(p)
      assert.is_truthy(k:match("^[ab][ab][cd][cd]$"), k)
      assert.is_true(same_order(p))
      seen[k] = true
    end
    -- all four orders appear (each has probability 1/4 per plan)
    assert.same({ abcd = true, abdc = true, bacd = true, badc = true }, seen)
  end)

  it("shuffles each family within its block when a family is preferred",
     function()
    local records = {
      domain = D, mx = { { pref = 10, name = "mx.example.com" } },
      addrs = { ["mx.example.com"] = { "192.0.2.1", "192.0.2.2",
                                       "2001:db8::1", "2001:db8::2" } },
    }
    local seen = {}
    for _ = 1, 400 do
      local a = assert(mxroute.plan(records, { prefer = "ipv6" })).hosts[1].addrs
      assert.is_truthy(a[1]:find(":", 1, true) and a[2]:find(":", 1, true))
      assert.is_falsy(a[3]:find(":", 1, true) or a[4]:find(":", 1, true))
      seen[table.concat(a, " ")] = true
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(4, n)
  end)

  it("gives the same plan twice for a fixed seed", function()
    local records = {
      domain = D,
      mx = {
        { pref = 10, name = "a.example.com" }, { pref = 10, name = "b.example.com" },
        { pref = 10, name = "c.example.com" }, { pref = 10, name = "d.example.com" },
        { pref = 20, name = "e.example.com" }, { pref = 20, name = "f.example.com" },
      },
      addrs = {
        ["a.example.com"] = { "192.0.2.1", "192.0.2.11", "2001:db8::1" },
        ["b.example.com"] = { "192.0.2.2", "192.0.2.12", "2001:db8::2" },
        ["c.example.com"] = { "192.0.2.3", "192.0.2.13" },
        ["d.example.com"] = { "192.0.2.4", "192.0.2.14" },
        ["e.example.com"] = { "192.0.2.5", "192.0.2.15" },
        ["f.example.com"] = { "192.0.2.6", "192.0.2.16" },
      },
    }
    for _, seed in ipairs { 0, 1, 42, 123456789, -5 } do
      local p1 = assert(mxroute.plan(records, { seed = seed }))
      local p2 = assert(mxroute.plan(records, { seed = seed }))
      assert.same(p1, p2)
    end
  end)

  it("gives the same plan for a seed however the addrs keys are written",
     function()
    local a = { domain = D, mx = HOSTS.mx, addrs = {} }
    local b = { domain = D, mx = HOSTS.mx, addrs = {} }
    local names = { "a", "b", "c" }
    for i, n in ipairs(names) do
      a.addrs[n .. ".example.com"] = { "192.0.2." .. i, "192.0.2.1" .. i }
    end
    -- the same facts, inserted backwards, keys in upper case with a dot
    for i = 3, 1, -1 do
      b.addrs[names[i]:upper() .. ".EXAMPLE.COM."] = { "192.0.2." .. i,
                                                        "192.0.2.1" .. i }
    end
    for seed = 1, 30 do
      local pa = assert(mxroute.plan(a, { seed = seed }))
      local pb = assert(mxroute.plan(b, { seed = seed }))
      assert.same(pa.hosts, pb.hosts)
      assert.same(pa.targets, pb.targets)
    end
  end)

  it("gives the same plan for a seed whatever the order of the MX records",
     function()
    local backwards = { domain = D, mx = {}, addrs = HOSTS.addrs }
    for i = #HOSTS.mx, 1, -1 do backwards.mx[#backwards.mx + 1] = HOSTS.mx[i] end
    for seed = 1, 30 do
      assert.same(assert(mxroute.plan(HOSTS, { seed = seed })).hosts,
                  assert(mxroute.plan(backwards, { seed = seed })).hosts)
    end
  end)

  it("gives different orders for different seeds at least sometimes",
     function()
    local seen, n = {}, 0
    for seed = 1, 50 do
      local k = host_key(assert(mxroute.plan(HOSTS, { seed = seed })))
      if not seen[k] then seen[k], n = true, n + 1 end
    end
    assert.is_true(n >= 3, "only " .. n .. " orders in 50 seeds")
  end)

  it("gives different orders without a seed at least sometimes", function()
    local seen, n = {}, 0
    for _ = 1, 50 do
      local k = host_key(assert(mxroute.plan(HOSTS)))
      if not seen[k] then seen[k], n = true, n + 1 end
    end
    assert.is_true(n >= 3, "only " .. n .. " orders in 50 plans")
  end)

  it("keeps the targets in the shuffled host and address order", function()
    for seed = 1, 200 do
      local p = assert(mxroute.plan({
        domain = D,
        mx = HOSTS.mx,
        addrs = {
          ["a.example.com"] = { "192.0.2.1", "192.0.2.11" },
          ["b.example.com"] = { "192.0.2.2", "192.0.2.12" },
          ["c.example.com"] = { "192.0.2.3", "192.0.2.13" },
        },
      }, { seed = seed }))
      assert.is_true(same_order(p))
    end
  end)
end)
