--- Fixtures shared by the specs of the coroutine-friendly lookups
-- (async_spec.lua without an event library, async_cqueues_spec.lua,
-- async_luv_spec.lua), of lifetime (lifetime_spec.lua) and of the
-- examples (examples_spec.lua): one fault server setup, the resolvers
-- they build, and the proofs every waiter must pass, written once and
-- run by each spec with its own way of running coroutines.
--
--     local cases = require "support.async_cases"
--     local srv, f = cases.servers { load = cases.N }  -- in setup; f.stop() in teardown
--     cases.rules(opts)                -- the rules of that fault server (names below)
--     cases.options(addr, opts)        -- Knot options: timeout 1, tries 2, then opts
--     cases.fault_options(addr, opts)  -- fault server options: timeout 5, tries 1
--     cases.resolver(addr, opts); cases.fault_resolver(addr, opts)  -- mxroute.resolver of those
--     cases.load_name(i)               -- "dI.load.test"
--     cases.load_ok(p, i)              -- p holds exactly the targets of load name i
--     local load = cases.load_counter(r)  -- load.resolve(i) in each task, then
--     load.check(peak)                 -- all N plans right, N in flight at the peak
--     cases.assert_woken_once(counts, cos)  -- N coroutines, each woken once
--     cases.DOMAINS, cases.expected(d) -- Knot domains (spec/zones), each one's
--                                      -- domain or failure code
--     -- `run(tasks)` runs a list of functions as coroutines the waiter's way,
--     -- returning once they have all ended:
--     cases.assert_lazy(f, r, run)     -- lazy.test's best level before its backup
--     cases.assert_race(r, run)        -- quick.test never waits for never.test
--     cases.assert_close_wakes(r, run, closer)  -- r:close() wakes every waiting task
--     local task = cases.slow_lookups(r, got)  -- slowish.test, then lazy.test; after
--     cases.check_slow_lookups(got)    -- running task: the plan and targets it got
--     local got = cases.submit_two(r)  -- two r:submit with callbacks; once run,
--     cases.check_submitted(r, got)    -- both callbacks ran, the literal's first
--     cases.assert_sleeps(fn)          -- fn waits >= 0.9 s using < 0.1 s of CPU;
--                                      -- returns the wall time
--     cases.load54(src, name)          -- a chunk with <close>: nil unless Lua 5.4
--     local it54 = cases.only54(it)    -- specs that exist only under Lua 5.4
--     cases.shell(cmd)                 -- output (stderr too) and exit status, in the checkout
--     cases.run_script(text, command)  -- text saved as a file FILE, then
--                                      -- cases.shell(command(quoted FILE))
--
-- The fault server names of cases.rules:
--
--   lazy.test         MX 10 best.lazy.test, 20 backup.lazy.test
--   best.lazy.test    A 192.0.2.1, AAAA 2001:db8::1, at once
--   backup.lazy.test  A 192.0.2.2, AAAA 2001:db8::2, each 1 s late
--   never.test        never answered
--   quick.test        MX 10 mx.quick.test (A 192.0.2.3), at once
--   slowish.test      MX 10 mx.quick.test, 200 ms late
--   slow.test         MX 10 mx.slow.test (A 192.0.2.5), 300 ms late
--   dI.load.test      (I = 1 .. opts.load) MX 10 mx.dI.load.test, which has
--                     A 198.51.100.(I % 254 + 1) and AAAA 2001:db8::I (hex);
--                     the MX answer 600 to 750 ms late, the A and AAAA
--                     150 to 300 ms late (varying with I)
--
-- Works under Lua 5.4 and LuaJIT; the assertions are busted's (luassert).
local assert = require "luassert"
local fault = require "support.fault"
local knot = require "support.knot"
local plans = require "support.plans"
local util = require "support.util"

local M = {}

--- How many load names the async proofs put in flight at once.
M.N = 1000

-- Fault server rules ------------------------------------------------------

--- The load name number i.
function M.load_name(i)
  return "d" .. i .. ".load.test"
end

-- The A and AAAA address of load name i.
local function load_addrs(i)
  return "198.51.100." .. (i % 254 + 1), ("2001:db8::%x"):format(i)
end

--- A fresh rules table with the names listed at the top, and
-- `opts.load` (default 0) load names.
function M.rules(opts)
  local rules = {
    ["lazy.test"] = { MX = { { 10, "best.lazy.test" }, { 20, "backup.lazy.test" } } },
    ["best.lazy.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
    ["backup.lazy.test"] = { A = "192.0.2.2", AAAA = "2001:db8::2", delay = 1000 },
    ["never.test"] = { drop = true },
    ["quick.test"] = { MX = { { 10, "mx.quick.test" } } },
    ["mx.quick.test"] = { A = "192.0.2.3" },
    ["slowish.test"] = { MX = { { 10, "mx.quick.test" } }, delay = 200 },
    ["slow.test"] = { MX = { { 10, "mx.slow.test" } }, delay = 300 },
    ["mx.slow.test"] = { A = "192.0.2.5" },
  }
  for i = 1, (opts and opts.load) or 0 do
    local d = M.load_name(i)
    local a, aaaa = load_addrs(i)
    rules[d] = { MX = { { 10, "mx." .. d } }, delay = 600 + (i * 37) % 151 }
    rules["mx." .. d] = { A = a, AAAA = aaaa, delay = 150 + (i * 53) % 151 }
  end
  return rules
end

--- The shared Knot server (spec/zones) and a fault server started with
-- M.rules(opts); stop the latter when done.
function M.servers(opts)
  return knot.shared(), fault.start(M.rules(opts))
end

--- Does plan p hold exactly the targets of load name i?
function M.load_ok(p, i)
  if not p or p.domain ~= M.load_name(i) then return false end
  local have, want = {}, { load_addrs(i) }
  for _, t in ipairs(p.targets) do have[#have + 1] = t.addr end
  table.sort(have)
  table.sort(want)
  return table.concat(have, " ") == table.concat(want, " ")
end

--- Counts the load lookups made on r: call c.resolve(i) from the task of
-- load name i, then c.check(peak) once they have all ended, with the
-- highest r:pending() seen meanwhile.
function M.load_counter(r)
  local c = { ok = 0, bad = {} }
  function c.resolve(i)
    local p, msg = r:resolve(M.load_name(i))
    if M.load_ok(p, i) then
      c.ok = c.ok + 1
    else
      c.bad[#c.bad + 1] = i .. ": " .. tostring(msg)
    end
  end
  function c.check(peak)
    assert.same({}, c.bad)
    assert.equal(M.N, c.ok)
    assert.equal(M.N, peak)
    assert.equal(0, r:pending())
  end
  return c
end

--- Every coroutine of the list `cos` was woken (or resumed) exactly once,
-- by `counts` (coroutine -> times), and there are M.N of them.
function M.assert_woken_once(counts, cos)
  local more = 0
  for _, co in ipairs(cos) do
    if counts[co] ~= 1 then more = more + 1 end
  end
  assert.equal(M.N, #cos)
  assert.equal(0, more)
end

-- Resolvers -----------------------------------------------------------------

local function options(addr, timeout, tries, opts)
  local o = { nameservers = { addr }, timeout = timeout, tries = tries }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

--- Resolver options for the Knot server at addr (timeout 1, tries 2),
-- overridden by opts.
function M.options(addr, opts)
  return options(addr, 1, 2, opts)
end

--- Resolver options for the fault server at addr (timeout 5, tries 1:
-- never.test waits for as long as a test lets it), overridden by opts.
function M.fault_options(addr, opts)
  return options(addr, 5, 1, opts)
end

--- mxroute.resolver of M.options(addr, opts).
function M.resolver(addr, opts)
  return plans.resolver(M.options(addr), opts)
end

--- mxroute.resolver of M.fault_options(addr, opts).
function M.fault_resolver(addr, opts)
  return plans.resolver(M.fault_options(addr), opts)
end

-- Proofs ------------------------------------------------------------------

--- Domains of spec/zones, of every kind: plain, backup, pool, implicit,
-- CNAME, NXDOMAIN, null MX, multihomed, duplicate exchanges.
M.DOMAINS = { "simple.mx.test", "backup.mx.test", "pool.mx.test", "addr.nomx.test",
              "alias.cname.test", "nosuch.mx.test", "null.nullmx.test", "multi.mx.test",
              "dup.mx.test" }

local FAILS = { ["nosuch.mx.test"] = "NXDOMAIN", ["null.nullmx.test"] = "NULLMX" }

--- What resolving domain d of M.DOMAINS gives: its failure code, or the
-- domain of its plan (the domain itself).
function M.expected(d)
  return FAILS[d] or d
end

-- Iterate r:targets("lazy.test") in a task of `run`. Returns what was
-- seen as each target arrived: { host, at (seconds since the start),
-- pending }, and for the first target whether the backup's A/AAAA had
-- been asked (backup_asked) and how many of them answered
-- (backup_replies); seen.code and seen.plan are the state's at the end.
local function lazy_run(f, r, run)
  local seen = {}
  local asked = #f.queries({ name = "backup.lazy.test" })
  local replied = #f.replies({ name = "backup.lazy.test" })
  local t0 = util.now()
  run { function()
    local it, st = r:targets("lazy.test")
    for t in it, st do
      local s = { host = t.host, at = util.now() - t0, pending = r:pending() }
      if #seen == 0 then
        -- the backup's A/AAAA were asked with the best host's...
        s.backup_asked = f.wait({ name = "backup.lazy.test" }, asked + 2, 0.5) ~= nil
        -- ...but have not been answered yet
        s.backup_replies = #f.replies({ name = "backup.lazy.test" }) - replied
      end
      seen[#seen + 1] = s
    end
    seen.code = st.code
    seen.plan = st.plan
  end }
  return seen
end

--- Iterate r:targets("lazy.test") in a task of `run` (f: the fault
-- server of M.rules): the best level must come while the backup is still
-- resolving, asked in parallel but not answered yet, and the backup's
-- targets a second later.
function M.assert_lazy(f, r, run)
  local seen = lazy_run(f, r, run)
  assert.equal(4, #seen) -- best: 2 addresses, backup: 2
  assert.equal("best.lazy.test", seen[1].host)
  assert.is_true(seen[1].backup_asked, "the backup's addresses were not asked in parallel")
  assert.equal(0, seen[1].backup_replies)
  assert.equal(1, seen[1].pending)
  assert.is_true(seen[1].at < 0.8, "first target after " .. seen[1].at .. " s")
  assert.equal("best.lazy.test", seen[2].host)
  assert.equal("backup.lazy.test", seen[3].host)
  assert.equal("backup.lazy.test", seen[4].host)
  assert.is_true(seen[3].at >= 0.9, "backup target after " .. seen[3].at .. " s")
  assert.is_nil(seen.code)
  assert.equal(4, #seen.plan.targets)
end

--- Run two tasks on r with `run`: one waits for never.test until r's
-- timeout, the other resolves quick.test three times meanwhile, which must
-- not wait for the first.
function M.assert_race(r, run)
  local order = {}
  run {
    function()
      local _, _, code = r:resolve("never.test")
      order[#order + 1] = "never:" .. code
    end,
    function()
      for _ = 1, 3 do
        local p = r:resolve("quick.test")
        order[#order + 1] = "quick:" .. p.targets[1].addr
      end
    end,
  }
  assert.same({ "quick:192.0.2.3", "quick:192.0.2.3", "quick:192.0.2.3", "never:TIMEOUT" }, order)
end

--- Run with `run` three tasks waiting in r:resolve("never.test"), one
-- iterating r:targets("never.test") and `closer`, a task that has r
-- closed 0.1 s later (in the loop's own way): each waiting task must be
-- woken at once with CANCELLED and a message.
function M.assert_close_wakes(r, run, closer)
  local got, tasks = { resolve = {} }, {}
  for i = 1, 3 do
    tasks[i] = function() got.resolve[i] = { r:resolve("never.test") } end
  end
  tasks[4] = function()
    local it, st = r:targets("never.test")
    for _ in it, st do got.target = true end
    got.targets = st
  end
  tasks[5] = closer
  local t0 = util.now()
  run(tasks)
  assert.is_true(util.now() - t0 < 1, "woken after " .. (util.now() - t0) .. " s")
  for i = 1, 3 do
    local res = got.resolve[i]
    assert.is_table(res, "waiter " .. i .. " never woke")
    assert.is_nil(res[1])
    assert.equal("string", type(res[2]))
    assert.equal("CANCELLED", res[3])
  end
  assert.is_nil(got.target)
  assert.is_table(got.targets, "the targets waiter never woke")
  assert.equal("CANCELLED", got.targets.code)
  assert.equal("string", type(got.targets.message))
end

--- A task that resolves slowish.test (200 ms late), then iterates
-- lazy.test (its backup 1 s late) on r; it puts the plan in got.plan, the
-- hosts of the targets in got.hosts and sets got.done at the end.
function M.slow_lookups(r, got)
  return function()
    got.plan = r:resolve("slowish.test")
    got.hosts = {}
    for t in r:targets("lazy.test") do got.hosts[#got.hosts + 1] = t.host end
    got.done = true
  end
end

--- The task of M.slow_lookups got what the fault server says.
function M.check_slow_lookups(got)
  assert.is_true(got.done)
  assert.equal("192.0.2.3", got.plan.targets[1].addr)
  assert.same({ "best.lazy.test", "best.lazy.test", "backup.lazy.test", "backup.lazy.test" },
              got.hosts)
end

--- Submit slowish.test (200 ms late) and a literal (complete at once) to
-- r with callbacks; returns the list where they write the first target's
-- address.
function M.submit_two(r)
  local got = {}
  r:submit("slowish.test", function(p) got[#got + 1] = p.targets[1].addr end)
  r:submit("user@[192.0.2.9]", function(p) got[#got + 1] = p.targets[1].addr end)
  return got
end

--- Both callbacks of M.submit_two ran, the literal's first, and nothing
-- is left in flight.
function M.check_submitted(r, got)
  assert.same({ "192.0.2.9", "192.0.2.3" }, got)
  assert.equal(0, r:pending())
end

--- Run fn, which waits about a second for an answer that does not come:
-- it must take at least 0.9 s and less than 0.1 s of CPU (the waiting is
-- done in the kernel, not by polling). Returns the wall time.
function M.assert_sleeps(fn)
  local c0, t0 = os.clock(), util.now()
  fn()
  local cpu, wall = os.clock() - c0, util.now() - t0
  assert.is_true(wall >= 0.9, "waited only " .. wall .. " s")
  assert.is_true(cpu < 0.1, "used " .. cpu .. " s of CPU in " .. wall .. " s")
  return wall
end

-- Chunks and processes ------------------------------------------------------

--- `src` compiled as the chunk `name` under Lua 5.4, for code that uses
-- <close>; nil under LuaJIT, which has no closing values.
function M.load54(src, name)
  if _VERSION ~= "Lua 5.4" then return nil end
  local chunk, err = load(src, "=" .. name, "t")
  assert(chunk, err)
  return chunk
end

--- only54(it) -> busted's `it` under Lua 5.4, else a function that
-- registers nothing: for behaviour that exists only there (to-be-closed
-- variables). Each such spec names the one that covers what LuaJIT users
-- write instead, so nothing is reported as skipped or pending. (`it` is
-- passed in: busted gives it to spec files, not to modules.)
function M.only54(it)
  if _VERSION == "Lua 5.4" then return it end
  return function() end
end

--- Run a shell command in the checkout ($MXR_ROOT, else the working
-- directory), its standard error with its standard output. Returns that
-- output and the exit status (a number).
function M.shell(cmd)
  local out = util.capture("cd " .. util.quote(os.getenv("MXR_ROOT") or ".") .. " && ("
    .. cmd .. ") 2>&1; echo \"exit=$?\"")
  local body, status = out:match("^(.-)exit=(%d+)\n$")
  return body or out, tonumber(status)
end

--- Save `text` as a Lua file in a private directory and run
-- M.shell(command(FILE)), FILE the file's absolute path as one shell
-- word; returns what M.shell returns. The directory is removed afterwards.
function M.run_script(text, command)
  local dir = util.make_dir("script")
  local file = dir .. "/script.lua"
  util.write_file(file, text)
  local out, status = M.shell(command(util.quote(file)))
  util.remove_dir(dir)
  return out, status
end

return M
