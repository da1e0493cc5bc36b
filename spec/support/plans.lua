--- Helpers shared by the specs that check plans (mxroute.plan, the
-- resolvers, the CLI and nginx): the documented fields of a plan, its
-- parts in an order that does not depend on chance, rule 13 applied to
-- the hosts, resolver constructors and error-message checks.
--
--     local plans = require "support.plans"
--     plans.doc(p)               -- the documented fields only (DESIGN section 2)
--     plans.hosts_of(p)          -- { name, pref, addrs } per host, addrs sorted
--     plans.names_of(p)          -- the host names, in order
--     plans.targets_of(p)        -- { host, pref, addr, family } per target
--     plans.skipped_of(p)        -- { name, pref, code }, by preference then name
--     plans.expected_targets(p)  -- rule 13: the targets that the hosts make
--     plans.sorted(list)         -- a sorted copy
--     plans.family_of(addr)      -- "ipv4" or "ipv6"
--     plans.resolver(defaults, opts)  -- mxroute.resolver of defaults, then opts
--     plans.raises_naming(field, fn)  -- fn raises, naming `field` as a word
--     plans.CLASSES              -- stable code -> class (DESIGN section 1)
--
-- Works under Lua 5.4 and LuaJIT; the assertions are busted's (luassert).
local assert = require "luassert"
local mxroute = require "mxroute"

local M = {}

--- A sorted copy of a list.
function M.sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

--- The family of an address string.
function M.family_of(addr)
  return addr:find(":", 1, true) and "ipv6" or "ipv4"
end

--- The hosts of a plan, each host's addresses sorted (their order is
-- random, rule 7).
function M.hosts_of(p)
  local out = {}
  for i, h in ipairs(p.hosts) do
    out[i] = { name = h.name, pref = h.pref, addrs = M.sorted(h.addrs) }
  end
  return out
end

--- The host names of a plan, in order.
function M.names_of(p)
  local out = {}
  for i, h in ipairs(p.hosts) do out[i] = h.name end
  return out
end

--- The documented fields of each target, in order.
function M.targets_of(p)
  local out = {}
  for i, t in ipairs(p.targets) do
    out[i] = { host = t.host, pref = t.pref, addr = t.addr, family = t.family }
  end
  return out
end

--- The documented fields of each skipped entry, ordered by preference
-- then name (DESIGN fixes no order).
function M.skipped_of(p)
  local s = {}
  for i, e in ipairs(p.skipped or {}) do
    s[i] = { name = e.name, pref = e.pref, code = e.code }
  end
  table.sort(s, function(a, b)
    if a.pref ~= b.pref then return a.pref < b.pref end
    return a.name < b.name
  end)
  return s
end

--- The documented fields of a plan only (DESIGN section 2), every list in
-- the plan's own order.
function M.doc(p)
  local out = {
    input = p.input, domain = p.domain, implicit = p.implicit,
    hosts = {}, targets = M.targets_of(p), skipped = {}, self_pref = p.self_pref,
  }
  for i, h in ipairs(p.hosts) do
    local addrs = {}
    for j, a in ipairs(h.addrs) do addrs[j] = a end
    out.hosts[i] = { name = h.name, pref = h.pref, addrs = addrs }
  end
  for i, s in ipairs(p.skipped or {}) do
    out.skipped[i] = { name = s.name, pref = s.pref, code = s.code }
  end
  return out
end

--- Rule 13: the targets are the hosts' addresses in order, each once.
function M.expected_targets(p)
  local seen, out = {}, {}
  for _, h in ipairs(p.hosts) do
    for _, a in ipairs(h.addrs) do
      if not seen[a] then
        seen[a] = true
        out[#out + 1] = { host = h.name, pref = h.pref, addr = a, family = M.family_of(a) }
      end
    end
  end
  return out
end

--- mxroute.resolver with the options of `defaults`, overridden by those
-- of `opts` (either may be nil).
function M.resolver(defaults, opts)
  local o = {}
  for k, v in pairs(defaults or {}) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return mxroute.resolver(o)
end

--- pcall(fn) must fail with a message naming `field` as a word: "mx" is
-- not found inside "mxroute".
function M.raises_naming(field, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error naming " .. field)
  local pat = "%f[%w_]" .. field:gsub("%p", "%%%0") .. "%f[^%w_]"
  assert.truthy(tostring(err):find(pat), "error does not name " .. field .. ": " .. tostring(err))
end

--- The class of every stable code (DESIGN section 1, "Error classes").
M.CLASSES = {
  BADNAME = "invalid", BADOPT = "invalid",
  NXDOMAIN = "permanent", NODATA = "permanent", NULLMX = "permanent",
  NOHOSTS = "permanent", IGNORED = "permanent", TOOMANY = "permanent",
  LOOP = "loop",
  SERVFAIL = "temporary", REFUSED = "temporary", TIMEOUT = "temporary",
  FORMERR = "temporary", CNAMELOOP = "temporary", NETWORK = "temporary",
  NOMEM = "temporary", CANCELLED = "temporary",
  -- routing policies (DESIGN 7)
  REJECTED = "permanent", DEFERRED = "temporary", HOOK = "temporary",
}

return M
