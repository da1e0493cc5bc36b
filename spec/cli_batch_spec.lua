-- The mxroute command in batch use (doc/cli.md): inputs from files and
-- standard input (-f), --unordered, --concurrency, --max-addrs, the
-- bounded window of input order, and SIGINT/SIGTERM (exit 75, pending
-- inputs CANCELLED). bin/mxroute runs as a subprocess against Knot and
-- the fault server; the window is also checked in-process with a
-- stand-in resolver that holds one input back.
local cjson = require "cjson"
local knot = require "support.knot"
local fault = require "support.fault"
local util = require "support.util"
local cli = require "mxroute.cli"

local LUA = util.interpreter()
local quote = util.quote

-- Run bin/mxroute; `stdin` is a file to read standard input from.
-- Returns stdout, stderr, status.
local function mxroute(args, stdin)
  return util.run(LUA .. " bin/mxroute", args, { stdin = stdin })
end

local function decode_lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = cjson.decode(line) end
  return t
end

local function inputs_of(list)
  local t = {}
  for i, o in ipairs(list) do t[i] = o.input end
  return t
end

-- Lines of the fault log after its first `from` entries, in order:
-- "q NAME TYPE" per query, "r NAME TYPE" per reply sent.
local function events(f, from)
  local t = {}
  for i, e in ipairs(f.log()) do
    if i > (from or 0) and e.name then
      t[#t + 1] = (e.event == "reply" and "r " or "q ") .. e.name:lower()
                  .. " " .. tostring(e.type)
    end
  end
  return t
end

local function index_of(list, item)
  for i, v in ipairs(list) do if v == item then return i end end
  return nil
end

local RULES = {
  -- answered after 300 ms, each with one host
  ["d1.test"] = { MX = { { 10, "h.d1.test" } }, delay = 300 },
  ["d2.test"] = { MX = { { 10, "h.d2.test" } }, delay = 300 },
  ["d3.test"] = { MX = { { 10, "h.d3.test" } }, delay = 300 },
  ["d4.test"] = { MX = { { 10, "h.d4.test" } }, delay = 300 },
  ["h.d1.test"] = { A = "192.0.2.1" }, ["h.d2.test"] = { A = "192.0.2.2" },
  ["h.d3.test"] = { A = "192.0.2.3" }, ["h.d4.test"] = { A = "192.0.2.4" },
  -- never answered
  ["silent.test"] = { drop = true },
  ["silent2.test"] = { drop = true },
  -- answered at once
  ["fast.test"] = { MX = { { 10, "h.fast.test" } } },
  ["h.fast.test"] = { A = "192.0.2.9" },
}

describe("mxroute batch mode", function()
  local ns, f, dir

  setup(function()
    ns = knot.shared().addr
    f = fault.start(RULES)
    dir = util.make_dir("cli-batch")
  end)

  teardown(function()
    if f then f.stop() end
    util.remove_dir(dir)
  end)

  local function write(name, text)
    local path = dir .. "/" .. name
    util.write_file(path, text)
    return path
  end

  describe("-f FILE", function()
    it("reads one input per line after the ADDRESS arguments, skipping comments and blank lines",
       function()
      local file = write("list", "# delivery check\n\n  simple.mx.test  \n"
                         .. "\t# indented comment\nuser@[192.0.2.7]\r\nnoexist.mx.test\n")
      local out, err, status = mxroute { "--nameserver", ns, "--json",
                                         "multi.mx.test", "-f", file }
      assert.are.equal("", err)
      assert.are.equal(68, status) -- NXDOMAIN is the worst
      local o = decode_lines(out)
      assert.are.same({ "multi.mx.test", "simple.mx.test", "user@[192.0.2.7]",
                        "noexist.mx.test" }, inputs_of(o))
      assert.are.same({ "ok", "ok", "ok", "error" },
                      { o[1].status, o[2].status, o[3].status, o[4].status })
      assert.are.equal("NXDOMAIN", o[4].code)
    end)

    it("reads standard input for -, and several files in order", function()
      local a = write("a", "simple.mx.test\n")
      local b = write("b", "[192.0.2.8]\n")
      local out, err, status = mxroute({ "--nameserver", ns, "-j", "-f", a, "-f", "-",
                                         "--file", b }, write("stdin", "user@\n[192.0.2.5]\n"))
      assert.are.equal("", err)
      assert.are.equal(65, status) -- user@ is invalid
      assert.are.same({ "simple.mx.test", "user@", "[192.0.2.5]", "[192.0.2.8]" },
                      inputs_of(decode_lines(out)))
    end)

    it("reports an over-long line as invalid and reads the last line without a newline",
       function()
      local file = write("long", string.rep("a", 70000) .. ".test\n[192.0.2.4]\n[192.0.2.6]")
      local out, err, status = mxroute { "--nameserver", ns, "--json", "-f", file }
      assert.are.equal("", err)
      assert.are.equal(65, status)
      local o = decode_lines(out)
      assert.are.equal(3, #o)
      assert.are.equal("BADNAME", o[1].code)
      assert.are.same({ "[192.0.2.4]", "[192.0.2.6]" }, { o[2].input, o[3].input })
    end)

    it("needs no ADDRESS argument, and an empty file gives no output and status 0", function()
      local out, err, status = mxroute { "--nameserver", ns, "-f", write("empty", "# none\n\n") }
      assert.are.same({ "", "", 0 }, { out, err, status })
    end)

    it("exits 66 naming a file that cannot be read, before resolving anything", function()
      local out, err, status = mxroute { "--nameserver", ns, "simple.mx.test", "-f",
                                         dir .. "/missing" }
      assert.are.equal("", out)
      assert.are.equal(66, status)
      assert.matches("missing", err, 1, true)
    end)

    it("is a usage error without a file name", function()
      local _, err, status = mxroute { "-f" }
      assert.are.equal(64, status)
      assert.matches("needs a value", err, 1, true)
    end)
  end)

  describe("--unordered", function()
    it("prints each result when it is known; input order is the default", function()
      local args = { "--nameserver", f.addr, "--timeout", "0.5", "--tries", "1", "-j",
                     "silent.test", "fast.test" }
      local out, _, status = mxroute(args)
      assert.are.equal(75, status)
      assert.are.same({ "silent.test", "fast.test" }, inputs_of(decode_lines(out)))
      table.insert(args, 1, "--unordered")
      out, _, status = mxroute(args)
      assert.are.equal(75, status)
      local o = decode_lines(out)
      assert.are.same({ "fast.test", "silent.test" }, inputs_of(o))
      assert.are.same({ "ok", "TIMEOUT" }, { o[1].status, o[2].code })
    end)
  end)

  describe("--concurrency", function()
    it("keeps at most N inputs in flight", function()
      local mark = #f.log()
      local out, err, status = mxroute { "--nameserver", f.addr, "--concurrency", "2", "-j",
                                         "d1.test", "d2.test", "d3.test", "d4.test" }
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.same({ "d1.test", "d2.test", "d3.test", "d4.test" },
                      inputs_of(decode_lines(out)))
      local ev = events(f, mark)
      local first_reply = assert(math.min(index_of(ev, "r d1.test MX"), index_of(ev, "r d2.test MX")))
      local d1, d2 = index_of(ev, "q d1.test MX"), index_of(ev, "q d2.test MX")
      local d3, d4 = index_of(ev, "q d3.test MX"), index_of(ev, "q d4.test MX")
      assert.is_true(d1 < first_reply and d2 < first_reply)
      -- the third and fourth wait until one of the first two is done
      assert.is_true(d3 > first_reply and d4 > first_reply)
    end)

    it("sends every input at once within the default of 32", function()
      local mark = #f.log()
      local _, _, status = mxroute { "--nameserver", f.addr, "d1.test", "d2.test",
                                     "d3.test", "d4.test" }
      assert.are.equal(0, status)
      local ev = events(f, mark)
      local first_reply = assert(index_of(ev, "r d1.test MX"))
      for i = 1, 4 do
        assert.is_true(index_of(ev, "q d" .. i .. ".test MX") < first_reply)
      end
    end)

    it("must be a whole number from 1 to 10000", function()
      for _, v in ipairs { "0", "-1", "1.5", "x", "10001", "" } do
        local _, err, status = mxroute { "--concurrency", v, "simple.mx.test" }
        assert.are.equal(64, status, v)
        assert.matches("--concurrency", err, 1, true)
      end
      assert.are.equal(10000, cli.parse { "--concurrency", "10000", "x" }.concurrency)
      assert.are.equal(32, cli.parse { "x" }.concurrency)
    end)
  end)

  describe("--max-addrs", function()
    it("keeps at most N addresses per host", function()
      local out, _, status = mxroute { "--nameserver", ns, "-j", "multi.mx.test" }
      assert.are.equal(0, status)
      assert.are.equal(4, #decode_lines(out)[1].hosts[1].addrs)
      out, _, status = mxroute { "--nameserver", ns, "-j", "--max-addrs", "1", "multi.mx.test" }
      assert.are.equal(0, status)
      local p = decode_lines(out)[1]
      assert.are.equal(1, #p.hosts[1].addrs)
      assert.are.equal(1, #p.targets)
    end)

    it("must be a whole number of at least 1", function()
      local _, err, status = mxroute { "--max-addrs", "0", "simple.mx.test" }
      assert.are.equal(64, status)
      assert.matches("--max-addrs", err, 1, true)
    end)
  end)

  describe("memory", function()
    -- Peak RSS (VmHWM, kB) of the CLI code reading n distinct addresses
    -- with literal domains (no DNS needed, each still submitted and
    -- reported) from stdin.
    local function peak(n)
      local file = dir .. "/lits" .. n
      local fh = assert(io.open(file, "w"))
      for i = 1, n do fh:write("u", i, "@[192.0.2.", i % 250 + 1, "]\n") end
      fh:close()
      local driver = [[
        local cli = require "mxroute.cli"
        local null = assert(io.open("/dev/null", "w"))
        local st = cli.main({ "-j", "-f", "-" }, null, io.stderr)
        for l in io.lines("/proc/self/status") do
          local kb = l:match("^VmHWM:%s*(%d+)")
          if kb then io.stdout:write(kb, "\n") end
        end
        os.exit(st)
      ]]
      local p = assert(io.popen(LUA .. " -e " .. quote(driver) .. " <" .. quote(file)))
      local out = p:read("*a")
      local ok = p:close()
      assert(ok ~= nil and ok ~= false, "the driver failed")
      return assert(tonumber(out:match("%d+")), out)
    end

    it("reads standard input as it goes: ten times the inputs, about the same peak RSS",
       function()
      local small, large = peak(5000), peak(50000)
      -- holding 45,000 more inputs or results would take megabytes
      assert.is_true(large - small < 1024,
                     ("peak RSS %d kB for 5,000 inputs, %d kB for 50,000"):format(small, large))
    end)
  end)

  describe("signals", function()
    -- Start bin/mxroute in the background; returns its pid and a function
    -- that waits for its exit and returns stdout, stderr, status.
    local function start(args, stdin)
      local tag = dir .. "/run" .. tostring(math.random(1e9))
      local parts = {}
      for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
      -- the subshell's own stdio is not the TAP pipe of this spec
      local cmd = "(MXR_STDIN=" .. quote(stdin or "/dev/null") .. " sh -c 'echo $$ >"
                  .. quote(tag .. ".pid") .. "; exec \"$@\" <\"$MXR_STDIN\"' sh "
                  .. LUA .. " bin/mxroute " .. table.concat(parts, " ")
                  .. " >" .. quote(tag .. ".out") .. " 2>" .. quote(tag .. ".err")
                  .. "; echo $? >" .. quote(tag .. ".status")
                  .. ") </dev/null >/dev/null 2>&1 &"
      assert(util.execute(cmd))
      local pid = assert(util.wait_until(function()
        local s = util.read_file(tag .. ".pid")
        return s and tonumber(s:match("%d+"))
      end, 5))
      local function output() return util.read_file(tag .. ".out") or "" end
      util.record_pid(pid)
      return pid, function()
        local st = assert(util.wait_until(function()
          local s = util.read_file(tag .. ".status")
          return s and s:find("\n", 1, true) and tonumber(s:match("%d+"))
        end, 10), "mxroute did not exit")
        return util.read_file(tag .. ".out"), util.read_file(tag .. ".err"), st
      end, output
    end

    it("prints each result while the next line has not arrived, and exits 75 on a signal then",
       function()
      local fifo = dir .. "/fifo"
      assert(util.execute("rm -f " .. quote(fifo) .. " && mkfifo " .. quote(fifo)))
      -- opened for reading and writing, which does not wait for a reader
      -- (Linux), so that the input stays open until closed here
      local w = assert(io.open(fifo, "r+"))
      local pid, finish, output = start({ "--nameserver", ns, "-j", "-f", "-" }, fifo)
      w:write("simple.mx.test\n")
      w:flush()
      -- printed before the input ends: the pipe stays open
      assert(util.wait_until(function() return output():find("\n", 1, true) end, 10),
             "no result while the input is open")
      assert.are.equal("simple.mx.test", cjson.decode(output()).input)
      w:write("[192.0.2.3]\n")
      w:flush()
      assert(util.wait_until(function()
        return select(2, output():gsub("\n", "")) == 2
      end, 10), "no second result")
      -- waiting for the third line, with nothing in flight: a signal ends it
      util.kill(pid, "sigint")
      local out, err, status = finish()
      w:close()
      assert.are.equal(75, status)
      assert.matches("SIGINT", err, 1, true)
      assert.are.same({ "simple.mx.test", "[192.0.2.3]" }, inputs_of(decode_lines(out)))
    end)

    for _, sig in ipairs { "sigterm", "sigint" } do
      it("exits 75 on " .. sig:upper() .. ", every pending input reported as CANCELLED",
         function()
        local mark = #f.log()
        local pid, finish = start { "--nameserver", f.addr, "--timeout", "30", "-j",
                                    "--concurrency", "2", "silent.test", "[192.0.2.1]",
                                    "silent2.test", "fast.test" }
        -- both silent names have been asked: the two in flight
        assert(util.wait_until(function()
          local ev = events(f, mark)
          return index_of(ev, "q silent.test MX") and index_of(ev, "q silent2.test MX")
        end, 10), "the queries did not arrive")
        util.kill(pid, sig)
        local out, err, status = finish()
        assert.are.equal(75, status)
        assert.matches(sig:upper(), err, 1, true)
        local o = decode_lines(out)
        assert.are.same({ "silent.test", "[192.0.2.1]", "silent2.test", "fast.test" },
                        inputs_of(o))
        assert.are.equal("ok", o[2].status)
        for _, i in ipairs { 1, 3, 4 } do
          assert.are.equal("CANCELLED", o[i].code)
          assert.are.equal("temporary", o[i].class)
          assert.matches("cancelled by " .. sig:upper(), o[i].message, 1, true)
        end
        -- fast.test was never submitted: no query for it
        assert.is_nil(index_of(events(f, mark), "q fast.test MX"))
      end)
    end
  end)
end)

describe("mxroute.cli input order", function()
  -- A stand-in module whose resolver holds "slow" back until release().
  local saved, submitted, released, at_release

  local function stub()
    local R = {}
    R.__index = R
    local pending = {}
    function R.submit(_, input, cb)
      submitted[#submitted + 1] = input
      local q = { input = input }
      function q.result()
        return { input = input, domain = input, hosts = {}, targets = {}, skipped = {} }
      end
      pending[#pending + 1] = { q, cb }
      return q
    end
    -- finish every pending input but a held-back slow one
    function R.step()
      local keep, n = {}, 0
      local now = pending
      pending = {}
      for _, item in ipairs(now) do
        if item[1].input == "slow" and not released then
          keep[#keep + 1] = item
        else
          n = n + 1
          item[2](nil, nil, nil, item[1])
        end
      end
      for _, item in ipairs(keep) do pending[#pending + 1] = item end
      if #keep > 0 and n == 0 then -- nothing else to do: let it go
        released, at_release = true, #submitted
      end
      return n
    end
    function R.timeout() return 0 end
    function R.close() end
    return {
      version = "0",
      class = function() return "temporary" end,
      resolver = function() return setmetatable({}, R) end,
    }
  end

  before_each(function()
    saved = package.loaded.mxroute
    package.loaded.mxroute = stub()
    submitted, released, at_release = {}, false, nil
  end)

  after_each(function() package.loaded.mxroute = saved end)

  local function run(args, n)
    local file = os.tmpname()
    local fh = assert(io.open(file, "w"))
    fh:write("slow\n")
    for i = 1, n do fh:write("in", i, "\n") end
    fh:close()
    local out = {}
    local sink = { write = function(self, ...)
      for _, v in ipairs { ... } do out[#out + 1] = tostring(v) end
      return self
    end }
    local args2 = { "-j", "-f", file }
    for _, a in ipairs(args) do args2[#args2 + 1] = a end
    local status = cli.main(args2, sink, sink)
    os.remove(file)
    local inputs = {}
    for line in table.concat(out):gmatch("([^\n]*)\n") do
      inputs[#inputs + 1] = cjson.decode(line).input
    end
    return status, inputs
  end

  it("holds at most 16 x --concurrency results behind a slow input", function()
    local status, inputs = run({ "--concurrency", "2" }, 200)
    assert.are.equal(0, status)
    assert.are.equal(201, #inputs)
    assert.are.equal("slow", inputs[1])
    for i = 1, 200 do assert.are.equal("in" .. i, inputs[i + 1]) end
    -- what was submitted before slow was let go: the window
    assert.are.equal(cli.HOLD * 2, at_release)
  end)

  it("is not held back with --unordered", function()
    local status, inputs = run({ "--concurrency", "2", "--unordered" }, 200)
    assert.are.equal(0, status)
    assert.are.equal(201, #inputs)
    assert.are.equal("slow", inputs[201])
    assert.are.equal(201, at_release)
  end)
end)
