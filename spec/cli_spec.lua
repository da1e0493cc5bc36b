-- The mxroute command line (doc/cli.md): the real bin/mxroute run as a
-- subprocess against the Knot test server (zones in spec/zones/), plus
-- M.main / M.parse in-process for argument parsing edge cases and the
-- output formats.
--
-- The interpreter for the subprocess is $MXR_LUA, else the one running
-- the specs (luajit or lua5.4). Run from the repository root.
local cjson = require "cjson"
local knot = require "support.knot"
local util = require "support.util"
local cli = require "mxroute.cli"

local LUA = util.interpreter()
local quote = util.quote

-- Run bin/mxroute with the argument list; returns stdout, stderr, status.
-- `script` replaces the script path, `cwd` the working directory; with
-- `raw`, `script` is the whole command before the arguments.
local function mxroute(args, script, cwd, raw)
  return util.run(raw and script or LUA .. " " .. quote(script or "bin/mxroute"),
                  args, { cwd = cwd })
end

local function lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

-- Decode every line of --json output.
local function decode_lines(s)
  local t = {}
  for _, line in ipairs(lines(s)) do t[#t + 1] = cjson.decode(line) end
  return t
end

local function keys(t)
  local k = {}
  for key in pairs(t) do k[#k + 1] = key end
  table.sort(k)
  return k
end

-- A file-like sink for M.main.
local function sink()
  local buf = {}
  return {
    write = function(self, ...)
      for _, v in ipairs { ... } do buf[#buf + 1] = tostring(v) end
      return self
    end,
    text = function() return table.concat(buf) end,
  }
end

local function main(args)
  local out, err = sink(), sink()
  local status = cli.main(args, out, err)
  return out.text(), err.text(), status
end

-- A 127.0.0.1 UDP port that nobody listens on (bound, then released).
local closed_port = util.dead_port

describe("mxroute command line", function()
  local ns

  setup(function()
    ns = knot.shared().addr
  end)

  -- bin/mxroute --nameserver <knot> ARGS...
  local function run(...)
    local args = { "--nameserver", ns }
    for _, a in ipairs { ... } do args[#args + 1] = a end
    return mxroute(args)
  end

  describe("human output", function()
    it("prints a header and one host per line, in preference order", function()
      local out, err, status = run("user@backup.mx.test")
      assert.are.equal(0, status)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal("user@backup.mx.test -> backup.mx.test", l[1])
      assert.matches("^%s+pref%s+host%s+addresses$", l[2])
      -- mx1 (10) before mx2 (20) although the zone lists them backwards
      assert.matches("^%s+10%s+mx1%.backup%.mx%.test%s+%S", l[3])
      assert.matches("^%s+20%s+mx2%.backup%.mx%.test%s+192%.0%.2%.12$", l[4])
      assert.truthy(l[3]:find("192.0.2.11", 1, true))
      assert.truthy(l[3]:find("2001:db8::11", 1, true))
      assert.are.equal(4, #l)
    end)

    it("aligns the columns of every row", function()
      local out = run("backup.mx.test")
      local l = lines(out)
      local col = l[2]:find("host", 1, true)
      assert.are.equal(col, l[3]:find("mx1", 1, true))
      assert.are.equal(col, l[4]:find("mx2", 1, true))
      local acol = l[2]:find("addresses", 1, true)
      assert.are.equal(acol, l[4]:find("192.0.2.12", 1, true))
    end)

    it("marks an implicit MX", function()
      local out, _, status = run("postmaster@addr.nomx.test")
      assert.are.equal(0, status)
      local l = lines(out)
      assert.are.equal(
        "postmaster@addr.nomx.test -> addr.nomx.test (implicit MX)", l[1])
      assert.matches("^%s+0%s+addr%.nomx%.test%s+%S", l[3])
      assert.truthy(l[3]:find("192.0.2.81", 1, true))
      assert.truthy(l[3]:find("2001:db8::81", 1, true))
    end)

    it("says at which preference we are MX and drops the hosts behind us",
       function()
      local out, _, status = run("--self", "us.self.test",
                                 "user@backup.self.test")
      assert.are.equal(0, status)
      local l = lines(out)
      assert.are.equal("user@backup.self.test -> backup.self.test"
                       .. " (we are MX at preference 20)", l[1])
      assert.matches("^%s+10%s+mx1%.provider%.self%.test%s+%S", l[3])
      assert.is_nil(out:find("mx2.provider", 1, true))
      assert.is_nil(out:find("us.self.test  ", 1, true))
      assert.are.equal(3, #l)
    end)

    it("lists skipped hosts with their code and class", function()
      local out, _, status = run("dangling2.broken.test")
      assert.are.equal(0, status)
      local l = lines(out)
      assert.matches("^%s+20%s+mx%.dangling2%.broken%.test%s+192%.0%.2%.101$",
                     l[3])
      assert.matches("^%s+skipped:$", l[4])
      assert.matches("^%s+10%s+gone%.dangling2%.broken%.test%s+"
                     .. "NXDOMAIN %(permanent%)$", l[5])
    end)

    it("prints one line per failure: input, code, class, message", function()
      local out, err, status = run("user@nothere.mx.test")
      assert.are.equal(68, status)
      assert.are.equal("", err)
      assert.matches("^user@nothere%.mx%.test: NXDOMAIN %(permanent%): .+\n$",
                     out)
    end)

    it("lists the skipped hosts under a failure", function()
      local out, _, status = run("dangling.broken.test")
      assert.are.equal(68, status)
      local l = lines(out)
      assert.matches("^dangling%.broken%.test: NOHOSTS %(permanent%): .+$",
                     l[1])
      assert.matches("^%s+skipped:$", l[2])
      assert.matches("^%s+10%s+gone%.dangling%.broken%.test%s+"
                     .. "NXDOMAIN %(permanent%)$", l[3])
      assert.are.equal(3, #l)
    end)

    it("separates the blocks of several inputs by a blank line", function()
      local out, _, status = run("simple.mx.test", "user@", "v6only.mx.test")
      assert.are.equal(65, status)
      local l = lines(out)
      assert.are.equal("simple.mx.test -> simple.mx.test", l[1])
      assert.are.equal("", l[4])
      assert.matches("^user@: BADNAME %(invalid%): ", l[5])
      assert.are.equal("", l[6])
      assert.are.equal("v6only.mx.test -> v6only.mx.test", l[7])
      assert.matches("^%s+10%s+mx%.v6only%.mx%.test%s+2001:db8::41$", l[9])
    end)
  end)

  describe("--json", function()
    it("prints the plan with every field in the documented order and type",
       function()
      local out, err, status = run("--json", "user@backup.mx.test")
      assert.are.equal(0, status)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal(1, #l)
      local head = '{"input":"user@backup.mx.test","status":"ok",'
                   .. '"domain":"backup.mx.test","implicit":false,'
                   .. '"hosts":[{"name":'
      assert.are.equal(head, l[1]:sub(1, #head))
      assert.truthy(l[1]:find('],"targets":[{"host":', 1, true))
      assert.truthy(l[1]:find('],"skipped":[],"ttl":300}', 1, true))
      local p = cjson.decode(l[1])
      assert.are.same({ "domain", "hosts", "implicit", "input", "skipped",
                        "status", "targets", "ttl" }, keys(p))
      assert.are.equal(false, p.implicit)
      assert.are.equal(2, #p.hosts)
      assert.are.same({ "addrs", "name", "pref" }, keys(p.hosts[1]))
      assert.are.equal("mx1.backup.mx.test", p.hosts[1].name)
      assert.are.equal(10, p.hosts[1].pref)
      assert.are.equal("number", type(p.hosts[1].pref))
      local a = { p.hosts[1].addrs[1], p.hosts[1].addrs[2] }
      table.sort(a)
      assert.are.same({ "192.0.2.11", "2001:db8::11" }, a)
      assert.are.same({ name = "mx2.backup.mx.test", pref = 20,
                        addrs = { "192.0.2.12" } }, p.hosts[2])
      assert.are.equal(3, #p.targets)
      for i, t in ipairs(p.targets) do
        assert.are.same({ "addr", "family", "host", "port", "pref" }, keys(t))
        assert.are.equal(25, t.port) -- DESIGN 2: every target has a port
        assert.are.equal(t.addr:find(":", 1, true) and "ipv6" or "ipv4",
                         t.family)
        if i <= 2 then
          assert.are.equal("mx1.backup.mx.test", t.host)
          assert.are.equal(10, t.pref)
          assert.are.equal(p.hosts[1].addrs[i], t.addr)
        end
      end
      assert.are.same({ host = "mx2.backup.mx.test", pref = 20,
                        addr = "192.0.2.12", family = "ipv4", port = 25 },
                      p.targets[3])
    end)

    it("sets implicit to true for the implicit MX", function()
      local p = decode_lines((run("--json", "addr.nomx.test")))[1]
      assert.are.equal(true, p.implicit)
      assert.are.equal("addr.nomx.test", p.hosts[1].name)
      assert.are.equal(0, p.hosts[1].pref)
    end)

    it("adds self_pref only when we are an MX", function()
      local out = run("--json", "--self", "us.self.test", "backup.self.test",
                      "notus.self.test")
      local p = decode_lines(out)
      assert.are.equal(20, p[1].self_pref)
      assert.are.same({ "mx1.provider.self.test" }, { p[1].hosts[1].name })
      assert.are.equal(1, #p[1].hosts)
      assert.is_nil(p[2].self_pref)
      assert.is_nil(lines(out)[2]:find("self_pref", 1, true))
    end)

    it("lists skipped hosts as name, pref, code", function()
      local p = decode_lines((run("--json", "dangling2.broken.test")))[1]
      assert.are.same({ { name = "gone.dangling2.broken.test", pref = 10,
                          code = "NXDOMAIN" } }, p.skipped)
      assert.truthy(run("--json", "dangling2.broken.test"):find(
        '"skipped":[{"name":"gone.dangling2.broken.test","pref":10,'
        .. '"code":"NXDOMAIN"}]', 1, true))
    end)

    it("prints a failure as input, status, code, class, message", function()
      local out, _, status = run("--json", "user@nothere.mx.test")
      assert.are.equal(68, status)
      local l = lines(out)
      assert.matches('^{"input":"user@nothere%.mx%.test","status":"error",'
                     .. '"code":"NXDOMAIN","class":"permanent","message":"',
                     l[1])
      local e = cjson.decode(l[1])
      assert.are.equal("string", type(e.message))
      assert.truthy(#e.message > 0)
    end)

    it("adds the skipped hosts to a failure that has some", function()
      local out, _, status = run("--json", "dangling.broken.test")
      assert.are.equal(68, status)
      local e = decode_lines(out)[1]
      assert.are.same({ "class", "code", "input", "message", "skipped",
                        "status", "ttl" }, keys(e))
      assert.are.same({ "NOHOSTS", "permanent" }, { e.code, e.class })
      assert.are.same({ { name = "gone.dangling.broken.test", pref = 10,
                          code = "NXDOMAIN" } }, e.skipped)
      assert.truthy(out:find('"message":"[^"]*","skipped":%[{"name":'))
    end)

    it("prints one line per input, in input order", function()
      local out, _, status = run("--json", "simple.mx.test", "user@",
                                 "null.nullmx.test", "v6only.mx.test")
      assert.are.equal(68, status)
      local p = decode_lines(out)
      assert.are.equal(4, #p)
      assert.are.same({ "simple.mx.test", "user@", "null.nullmx.test",
                        "v6only.mx.test" },
                      { p[1].input, p[2].input, p[3].input, p[4].input })
      assert.are.same({ "ok", "error", "error", "ok" },
                      { p[1].status, p[2].status, p[3].status, p[4].status })
      assert.are.same({ "BADNAME", "invalid" }, { p[2].code, p[2].class })
      assert.are.same({ "NULLMX", "permanent" }, { p[3].code, p[3].class })
      assert.are.equal("mx.simple.mx.test", p[1].hosts[1].name)
      assert.are.same({ "2001:db8::41" }, p[4].hosts[1].addrs)
    end)
  end)

  describe("exit status", function()
    it("is 0 when every input has a plan", function()
      local _, _, status = run("simple.mx.test", "user@backup.mx.test")
      assert.are.equal(0, status)
    end)

    it("is 65 for invalid input", function()
      local out, _, status = run("--json", "user@")
      assert.are.equal(65, status)
      local e = decode_lines(out)[1]
      assert.are.same({ "class", "code", "input", "message", "status" },
                      keys(e))
      assert.are.same({ "user@", "error", "BADNAME", "invalid" },
                      { e.input, e.status, e.code, e.class })
    end)

    it("is 68 for a permanent failure", function()
      local _, _, status = run("nothere.mx.test")
      assert.are.equal(68, status)
      _, _, status = run("null.nullmx.test")
      assert.are.equal(68, status)
    end)

    it("is 69 when we are the best MX", function()
      local out, _, status = run("--json", "--self", "us.self.test",
                                 "user@best.self.test")
      assert.are.equal(69, status)
      local e = decode_lines(out)[1]
      assert.are.same({ "LOOP", "loop" }, { e.code, e.class })
      -- without --self the same domain is fine
      _, _, status = run("user@best.self.test")
      assert.are.equal(0, status)
    end)

    it("is 75 when the name server does not answer", function()
      local out, err, status = mxroute {
        "--json", "--nameserver", "127.0.0.1:" .. closed_port(),
        "--timeout", "0.2", "--tries", "1", "simple.mx.test" }
      assert.are.equal(75, status)
      assert.are.equal("", err)
      local e = decode_lines(out)[1]
      assert.are.equal("error", e.status)
      assert.are.equal("temporary", e.class)
    end)

    it("is the highest of the inputs' codes", function()
      local _, _, status = run("simple.mx.test", "user@")
      assert.are.equal(65, status)
      _, _, status = run("user@", "nothere.mx.test", "simple.mx.test")
      assert.are.equal(68, status)
      _, _, status = run("--self", "us.self.test", "best.self.test", "user@",
                         "nothere.mx.test")
      assert.are.equal(69, status)
      _, _, status = mxroute { "--nameserver", "127.0.0.1:" .. closed_port(),
                               "--timeout", "0.2", "--tries", "1",
                               "user@", "simple.mx.test" }
      assert.are.equal(75, status)
    end)
  end)

  describe("options", function()
    it("--help prints the usage on stdout and exits 0", function()
      local out, err, status = mxroute { "--help" }
      assert.are.equal(0, status)
      assert.are.equal("", err)
      assert.are.equal(cli.usage, out)
      assert.matches("^Usage: mxroute %[options%] ADDRESS%.%.%.\n", out)
      for _, opt in ipairs { "--json", "--nameserver", "--self", "--family",
                             "--prefer", "--seed", "--timeout", "--tries",
                             "--allow-mx-to-ip", "--ignore-targets",
                             "--max-hosts", "--self-interfaces", "--version" } do
        assert.truthy(out:find(opt, 1, true), opt)
      end
    end)

    it("--version prints the module's version", function()
      local out, err, status = mxroute { "--version" }
      assert.are.equal(0, status)
      assert.are.equal("", err)
      assert.are.equal("mxroute " .. require("mxroute").version .. "\n", out)
      assert.matches("^mxroute %d+%.%d+%.%d+", out)
    end)

    it("exits 64 with a message and a hint on usage errors", function()
      for _, args in ipairs {
        {}, { "--bogus", "x" }, { "-x", "x" }, { "x", "--nameserver" },
        { "--family", "ipv5", "x" }, { "--prefer", "any", "x" },
        { "--nameserver", "not-an-ip", "x" }, { "--json=yes", "x" },
        { "--timeout", "0", "x" }, { "--tries", "many", "x" },
        { "--seed", "-1", "x" }, { "--max-hosts", "0", "x" },
        { "--ignore-targets", "10.0.0.0/8,,", "x" }, { "--json" },
      } do
        local out, err, status = mxroute(args)
        local what = table.concat(args, " ")
        assert.are.equal(64, status, what)
        assert.are.equal("", out, what)
        assert.matches("^mxroute: .+\nTry 'mxroute %-%-help' for more "
                       .. "information%.\n$", err, 1, what)
      end
    end)

    it("exits 64 when the library rejects an option value", function()
      local out, err, status = run("--ignore-targets", "10.0.0.0/99",
                                   "simple.mx.test")
      assert.are.equal(64, status)
      assert.are.equal("", out)
      assert.matches("^mxroute: bad value for %-%-ignore%-targets: ", err)
    end)

    it("--seed makes the order of equal preferences reproducible", function()
      local first = run("--json", "--seed", "42", "pool.mx.test")
      for _ = 1, 3 do
        assert.are.equal(first, (run("--json", "--seed", "42",
                                     "pool.mx.test")))
      end
      local orders = {}
      for seed = 1, 12 do
        local p = decode_lines((run("--json", "--seed", tostring(seed),
                                    "pool.mx.test")))[1]
        local names = {}
        for i, h in ipairs(p.hosts) do names[i] = h.name end
        assert.are.equal(3, #names)
        orders[table.concat(names, " ")] = true
      end
      -- 12 seeds drawing 1 of 6 orders all alike: about 1 in 6^11
      assert.truthy(#keys(orders) > 1)
    end)

    it("--family ipv6 keeps only IPv6 addresses", function()
      local out, _, status = run("--json", "--family", "ipv6",
                                 "backup.mx.test", "multi.mx.test")
      assert.are.equal(0, status)
      local p = decode_lines(out)
      assert.are.same({ "2001:db8::11" }, p[1].hosts[1].addrs)
      local multi = p[2].hosts[1].addrs
      table.sort(multi)
      assert.are.same({ "2001:db8::31", "2001:db8::32" }, multi)
      for _, plan in ipairs(p) do
        for _, h in ipairs(plan.hosts) do
          assert.is_nil(h.name == "mx2.backup.mx.test" and h or nil)
        end
        for _, t in ipairs(plan.targets) do
          assert.are.equal("ipv6", t.family)
        end
      end
    end)

    it("--family ipv4 keeps only IPv4 addresses", function()
      local p = decode_lines((run("--json", "--family", "ipv4",
                                  "multi.mx.test")))[1]
      local multi = p.hosts[1].addrs
      table.sort(multi)
      assert.are.same({ "192.0.2.31", "192.0.2.32" }, multi)
    end)

    it("--prefer puts one family first within a host", function()
      for _ = 1, 3 do
        local p6 = decode_lines((run("--json", "--prefer", "ipv6",
                                     "multi.mx.test")))[1]
        local p4 = decode_lines((run("--json", "--prefer", "ipv4",
                                     "multi.mx.test")))[1]
        assert.are.same({ "ipv6", "ipv6", "ipv4", "ipv4" },
          { p6.targets[1].family, p6.targets[2].family,
            p6.targets[3].family, p6.targets[4].family })
        assert.are.same({ "ipv4", "ipv4", "ipv6", "ipv6" },
          { p4.targets[1].family, p4.targets[2].family,
            p4.targets[3].family, p4.targets[4].family })
      end
    end)

    it("--ignore-targets none lets private addresses through", function()
      local _, _, status = run("private.broken.test")
      assert.are.equal(68, status)
      local out
      out, _, status = run("--json", "--ignore-targets", "none",
                           "private.broken.test")
      assert.are.equal(0, status)
      local addrs = decode_lines(out)[1].hosts[1].addrs
      table.sort(addrs)
      assert.are.same({ "10.0.0.1", "127.0.0.1", "::1", "fd00::1" }, addrs)
    end)

    it("--ignore-targets replaces the default list", function()
      local out, _, status = run("--json", "--ignore-targets",
                                 "192.0.2.11/32, 192.0.2.12", "backup.mx.test")
      assert.are.equal(0, status)
      local p = decode_lines(out)[1]
      assert.are.same({ "2001:db8::11" }, p.hosts[1].addrs)
      assert.are.equal(1, #p.hosts)
      -- 10.0.0.1 is no longer in the list
      out, _, status = run("--json", "--ignore-targets", "192.0.2.0/24",
                           "private.broken.test")
      assert.are.equal(0, status)
      assert.are.equal(4, #decode_lines(out)[1].targets)
    end)

    it("--allow-mx-to-ip uses an IP exchange as the address", function()
      local _, _, status = run("iplitonly.broken.test")
      assert.are.equal(68, status)
      local out
      out, _, status = run("--json", "--allow-mx-to-ip",
                           "iplitonly.broken.test")
      assert.are.equal(0, status)
      local p = decode_lines(out)[1]
      assert.are.equal("192.0.2.55", p.targets[1].addr)
    end)

    it("--self-interfaces counts this host's interface addresses as self", function()
      -- mx.private.broken.test has 127.0.0.1 (and ::1): the loopback
      -- interface's addresses, allowed here by --ignore-targets none
      local _, _, status = run("--ignore-targets", "none", "private.broken.test")
      assert.are.equal(0, status)
      local out
      out, _, status = run("--json", "--ignore-targets", "none", "--self-interfaces",
                           "private.broken.test")
      assert.are.equal(69, status)
      assert.are.equal("LOOP", decode_lines(out)[1].code)
    end)

    it("--max-hosts limits the MX hosts used", function()
      local out, _, status = run("--json", "--max-hosts", "1",
                                 "backup.mx.test")
      assert.are.equal(0, status)
      local p = decode_lines(out)[1]
      assert.are.equal(1, #p.hosts)
      assert.are.equal("mx1.backup.mx.test", p.hosts[1].name)
      for _, t in ipairs(p.targets) do
        assert.are.equal("mx1.backup.mx.test", t.host)
      end
    end)

    it("takes --opt=value and treats everything after -- as ADDRESSes",
       function()
      local out, _, status = mxroute { "--json", "--nameserver=" .. ns,
                                       "--", "--json", "simple.mx.test" }
      assert.are.equal(65, status)
      local p = decode_lines(out)
      assert.are.same({ "--json", "BADNAME" }, { p[1].input, p[1].code })
      assert.are.equal("ok", p[2].status)
    end)

    it("runs through a symlink from any directory", function()
      local dir = util.make_dir("cli")
      local root = util.absolute(".")
      assert(os.execute("ln -s " .. quote(root .. "/bin/mxroute") .. " "
                        .. quote(dir .. "/mx")))
      local out, err, status = mxroute({ "--version" }, dir .. "/mx", "/")
      local out2, _, status2 = mxroute({ "--nameserver", ns, "--json",
                                         "simple.mx.test" }, dir .. "/mx", "/")
      util.remove_dir(dir)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal("mxroute " .. require("mxroute").version .. "\n", out)
      assert.are.equal(0, status2)
      assert.are.equal("ok", decode_lines(out2)[1].status)
    end)

    it("runs installed, with its modules found through the Lua paths",
       function()
      local dir = util.make_dir("cli")
      assert(os.execute("mkdir -p " .. quote(dir .. "/bin")))
      assert(os.execute("cp bin/mxroute " .. quote(dir .. "/bin/mxroute")))
      local root = util.absolute(".")
      local flavour = LUA:find("luajit", 1, true) and "luajit" or "lua5.4"
      local out, err, status = mxroute({ "--version" }, table.concat {
        "env LUA_PATH=", quote(root .. "/lua/?.lua;;"), " LUA_CPATH=",
        quote(root .. "/build/" .. flavour .. "/?.so;;"), " ", LUA, " ",
        quote(dir .. "/bin/mxroute") }, "/", true)
      util.remove_dir(dir)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal("mxroute " .. require("mxroute").version .. "\n", out)
    end)
  end)
end)

describe("mxroute.cli in-process", function()
  describe("parse", function()
    local function ns(v)
      local cfg, why = cli.parse { "--nameserver", v, "x" }
      return cfg and cfg.resolver.nameservers[1], why
    end

    it("normalises --nameserver values to IP:PORT", function()
      assert.are.equal("127.0.0.1:5353", ns("127.0.0.1:5353"))
      assert.are.equal("127.0.0.1:53", ns("127.0.0.1"))
      assert.are.equal("[::1]:5353", ns("[::1]:5353"))
      assert.are.equal("[::1]:53", ns("::1"))
      assert.are.equal("[::1]:53", ns("[::1]"))
      assert.are.equal("[2001:db8::1:2]:53", ns("2001:db8::1:2"))
      assert.are.equal("[::ffff:192.0.2.1]:53", ns("::ffff:192.0.2.1"))
      assert.are.equal("[1:2:3:4:5:6:7:8]:1", ns("[1:2:3:4:5:6:7:8]:1"))
      -- RFC 5952 4.2.2: "::" never stands for a single zero group
      assert.are.equal("[1:2:3:4:5:6:7:0]:53", ns("1:2:3:4:5:6:7::"))
      assert.are.equal("[2001:db8::1]:53", ns("2001:DB8:0:0::1"))
    end)

    it("rejects --nameserver values that are not IP[:PORT]", function()
      for _, v in ipairs { "", "localhost", "256.0.0.1", "1.2.3",
                           "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:",
                           "127.0.0.1:x", "[127.0.0.1]:53", "[::1]:",
                           "1:2:3:4:5:6:7:8:9", "1::2::3", "1:::2", "::1:",
                           "1.2.3.4::", "12345::1", "[::1]:53:53", ":53",
                           "::g", "01.2.3.4", "::::", "0.0.0.0", "::",
                           "255.255.255.255", "224.0.0.1", "ff02::1" } do
        local value, why = ns(v)
        assert.is_nil(value, v)
        assert.matches("^bad value '.*' for %-%-nameserver: ", why)
      end
    end)

    it("collects repeated options in order", function()
      local cfg = assert(cli.parse {
        "--nameserver", "127.0.0.1:1", "a", "--nameserver", "::1",
        "--self", "mx.example", "b", "--self", "192.0.2.5",
        "--ignore-targets", "10.0.0.0/8,192.168.0.0/16",
        "--ignore-targets", "fc00::/7",
      })
      assert.are.same({ "127.0.0.1:1", "[::1]:53" }, cfg.resolver.nameservers)
      assert.are.same({ "mx.example", "192.0.2.5" }, cfg.resolver.self)
      assert.are.same({ "10.0.0.0/8", "192.168.0.0/16", "fc00::/7" },
                      cfg.resolver.ignore_targets)
      assert.are.same({ "a", "b" }, cfg.inputs)
    end)

    it("maps every option to its resolver field", function()
      local cfg = assert(cli.parse {
        "-j", "--family=ipv6", "--prefer", "ipv4", "--seed", "12",
        "--timeout", "0.25", "--tries", "2", "--allow-mx-to-ip",
        "--ignore-targets", "none", "--max-hosts", "5", "x",
      })
      assert.are.equal(true, cfg.json)
      assert.are.same({ family = "ipv6", prefer = "ipv4", seed = 12,
                        timeout = 0.25, tries = 2, allow_mx_to_ip = true,
                        ignore_targets = {}, max_hosts = 5 }, cfg.resolver)
      cfg = assert(cli.parse { "--prefer", "ipv6", "--prefer", "none", "x" })
      assert.is_nil(cfg.resolver.prefer)
      cfg = assert(cli.parse { "x" })
      assert.are.same({}, cfg.resolver)
      assert.are.equal(false, cfg.json)
    end)

    it("accepts the documented forms of seconds", function()
      for v, n in pairs { ["2"] = 2, ["0.5"] = 0.5, [".5"] = 0.5,
                          ["1."] = 1 } do
        assert.are.equal(n, assert(cli.parse { "--timeout", v, "x" })
                              .resolver.timeout)
      end
      for _, v in ipairs { "-1", "1e3", "0x10", "inf", "nan", "0.0", "" } do
        assert.is_nil(cli.parse { "--timeout", v, "x" }, v)
      end
    end)

    it("takes '-' and anything after '--' as ADDRESSes", function()
      local cfg = assert(cli.parse { "-", "--", "-j", "--help" })
      assert.are.same({ "-", "-j", "--help" }, cfg.inputs)
      assert.are.equal(false, cfg.json)
      assert.are.equal(false, cfg.help)
    end)

    it("names the problem in usage errors", function()
      local cases = {
        [{ "--wat", "x" }] = "unknown option '--wat'",
        [{ "-jx", "x" }] = "unknown option '-jx'",
        [{ "x", "--seed" }] = "option '--seed' needs a value",
        [{ "--json=1", "x" }] = "option '--json' takes no value",
        [{ "--family", "v6", "x" }] =
          "bad value 'v6' for --family: expected any, ipv4 or ipv6",
        [{ "--self", "", "x" }] = "bad value '' for --self: empty name",
        [{}] = "no ADDRESS given",
        [{ "--bad\n" }] = "unknown option '--bad\\x0a'",
      }
      for args, msg in pairs(cases) do
        local cfg, why = cli.parse(args)
        assert.is_nil(cfg)
        assert.are.equal(msg, why)
      end
    end)

    it("has a flag in --help for every library option with one, setting that option", function()
      local options = require "mxroute.options"
      local SAMPLE = { integer = "7", seconds = "0.5", names = "mx.example",
                       cidrs = "10.0.0.0/8", nameservers = "127.0.0.1", routes = "FILE" }
      local n = 0
      for _, f in ipairs(options.LIST) do
        if f.flag then
          n = n + 1
          assert.truthy(cli.usage:find("\n      " .. f.flag, 1, true), f.flag)
          local value = f.kind == "oneof" and f.values[2] or SAMPLE[f.kind]
          local cfg = assert(cli.parse(f.kind == "boolean" and { f.flag, "x" }
                                       or { f.flag, value, "x" }))
          if f.kind == "routes" then
            assert.equal("FILE", cfg.routes_file)
          else
            assert.is_not_nil(cfg.resolver[f.name], f.name)
          end
        end
      end
      assert.equal(13, n)
    end)

    it("names the flag when a value is beyond the option's range in the table", function()
      local options = require "mxroute.options"
      for _, f in ipairs(options.LIST) do
        if f.flag and f.kind == "integer" and f.max < 2 ^ 53 then
          local out, err, status = main { f.flag, ("%d"):format(f.max + 1), "x" }
          assert.equal(64, status, f.flag)
          assert.equal("", out)
          assert.equal(("mxroute: bad value for %s: mxroute.resolver: option '%s': "
                        .. "expected an integer %d..%d\nTry 'mxroute --help' for more "
                        .. "information.\n"):format(f.flag, f.name, f.min, f.max), err)
        end
      end
    end)

    it("needs no ADDRESS for --help and --version", function()
      assert.are.equal(true, assert(cli.parse { "--help" }).help)
      assert.are.equal(true, assert(cli.parse { "-V" }).version)
    end)
  end)

  describe("main", function()
    it("prints usage errors on err and returns 64", function()
      local out, err, status = main { "--tries", "0", "x" }
      assert.are.equal(64, status)
      assert.are.equal("", out)
      assert.are.equal("mxroute: bad value '0' for --tries: expected a whole "
                       .. "number of at least 1\nTry 'mxroute --help' for "
                       .. "more information.\n", err)
    end)

    it("prints the usage for -h and returns 0", function()
      local out, err, status = main { "-h" }
      assert.are.equal(0, status)
      assert.are.equal(cli.usage, out)
      assert.are.equal("", err)
    end)

    it("resolves against the real server in-process", function()
      local out, err, status = main { "-j", "--nameserver", knot.shared().addr,
                                      "user@simple.mx.test", "nothere.mx.test" }
      assert.are.equal(68, status)
      assert.are.equal("", err)
      local p = decode_lines(out)
      assert.are.equal("mx.simple.mx.test", p[1].hosts[1].name)
      assert.are.equal("NXDOMAIN", p[2].code)
    end)
  end)

  -- The formatting and the waiting loop, on a stand-in for the mxroute
  -- module (package.loaded) so that every case is exact.
  describe("with a stand-in module", function()
    local saved
    local seen       -- options given to resolver{}
    local closed
    local results    -- input -> { plan } or { nil, message, code, extra }
    local use_submit

    local CLASS = { BADNAME = "invalid", NXDOMAIN = "permanent",
                    NOHOSTS = "permanent", LOOP = "loop",
                    TIMEOUT = "temporary", SERVFAIL = "temporary" }

    local function stub()
      local R = {}
      R.__index = R
      function R.resolve(_, input)
        local r = results[input]
        return r[1], r[2], r[3], r[4]
      end
      function R.close() closed = true end
      local pending = {}
      function R.submit(_, input, cb)
        local q = { input = input }
        function q.result() return R.resolve(nil, input) end
        pending[#pending + 1] = { q, cb }
        return q
      end
      -- finish the newest first, to check that output keeps input order
      function R.step()
        local item = table.remove(pending)
        if item then item[2](nil, "ignored", "IGNORED", item[1]) end
        return item and 1 or 0
      end
      function R.timeout() return 0 end
      return {
        version = "9.8.7",
        class = function(code) return CLASS[code] end,
        resolver = function(opts)
          seen = opts
          if opts.self and opts.self[1] == "bad" then
            error("mxroute.lua:1: resolver: bad field 'self': bad", 0)
          end
          local r = setmetatable({}, R)
          if not use_submit then r.submit, r.step = false, false end
          return r
        end,
      }
    end

    local PLAN = {
      input = "user@example.test", domain = "example.test",
      implicit = false,
      hosts = {
        { name = "mx1.example.test", pref = 10,
          addrs = { "192.0.2.1", "2001:db8::1" } },
        { name = "mx2.example.test", pref = 20, addrs = { "192.0.2.2" } },
      },
      targets = {
        { host = "mx1.example.test", pref = 10, addr = "192.0.2.1",
          family = "ipv4" },
        { host = "mx1.example.test", pref = 10, addr = "2001:db8::1",
          family = "ipv6" },
        { host = "mx2.example.test", pref = 20, addr = "192.0.2.2",
          family = "ipv4" },
      },
      skipped = { { name = "gone.example.test", pref = 5,
                    code = "NXDOMAIN" } },
      self_pref = 30,
      extra_field = "not printed",
    }

    before_each(function()
      saved = package.loaded.mxroute
      package.loaded.mxroute = stub()
      seen, closed, use_submit = nil, false, false
      results = {
        ["user@example.test"] = { PLAN },
        ["user@"] = { nil, "user@: the domain is empty", "BADNAME" },
        ["gone.test"] = { nil, "gone.test: domain does not exist",
                          "NXDOMAIN" },
        ["slow.test"] = { nil, "slow.test: no answer", "TIMEOUT" },
        ["us.test"] = { nil, "us.test: we are the best MX", "LOOP" },
        ["dead.test"] = { nil, "dead.test: no usable host", "NOHOSTS",
                          { skipped = { { name = "mx.dead.test", pref = 10,
                                          code = "SERVFAIL" } } } },
        ["odd.test"] = { nil, "odd.test: strange", "WEIRD" },
      }
    end)

    after_each(function()
      package.loaded.mxroute = saved
    end)

    it("prints the plan as an aligned table", function()
      local out, err, status = main { "user@example.test" }
      assert.are.equal(0, status)
      assert.are.equal("", err)
      assert.are.equal(table.concat({
        "user@example.test -> example.test (we are MX at preference 30)",
        "  pref  host               addresses",
        "    10  mx1.example.test   192.0.2.1, 2001:db8::1",
        "    20  mx2.example.test   192.0.2.2",
        "  skipped:",
        "     5  gone.example.test  NXDOMAIN (permanent)",
        "" }, "\n"), out)
      assert.are.equal(true, closed)
    end)

    it("prints the plan as one JSON line in the documented order", function()
      local out = main { "--json", "user@example.test" }
      assert.are.equal(
        '{"input":"user@example.test","status":"ok","domain":"example.test",'
        .. '"implicit":false,"hosts":[{"name":"mx1.example.test","pref":10,'
        .. '"addrs":["192.0.2.1","2001:db8::1"]},{"name":"mx2.example.test",'
        .. '"pref":20,"addrs":["192.0.2.2"]}],"targets":[{"host":'
        .. '"mx1.example.test","pref":10,"addr":"192.0.2.1","family":"ipv4"},'
        .. '{"host":"mx1.example.test","pref":10,"addr":"2001:db8::1",'
        .. '"family":"ipv6"},{"host":"mx2.example.test","pref":20,"addr":'
        .. '"192.0.2.2","family":"ipv4"}],"skipped":[{"name":'
        .. '"gone.example.test","pref":5,"code":"NXDOMAIN"}],'
        .. '"self_pref":30}\n', out)
    end)

    it("writes implicit as a boolean and empty lists as []", function()
      results["bare.test"] = { {
        input = "bare.test", domain = "bare.test", implicit = nil,
        hosts = { { name = "bare.test", pref = 0, addrs = {} } },
        targets = {},
      } }
      assert.are.equal(
        '{"input":"bare.test","status":"ok","domain":"bare.test",'
        .. '"implicit":false,"hosts":[{"name":"bare.test","pref":0,'
        .. '"addrs":[]}],"targets":[],"skipped":[]}\n',
        (main { "--json", "bare.test" }))
    end)

    it("prints the skipped hosts that come with a failure", function()
      local out, _, status = main { "dead.test" }
      assert.are.equal(68, status)
      assert.are.equal("dead.test: NOHOSTS (permanent): dead.test: no usable "
                       .. "host\n  skipped:\n    10  mx.dead.test  SERVFAIL "
                       .. "(temporary)\n", out)
      out = main { "-j", "dead.test", "gone.test" }
      assert.are.equal(
        '{"input":"dead.test","status":"error","code":"NOHOSTS","class":'
        .. '"permanent","message":"dead.test: no usable host","skipped":'
        .. '[{"name":"mx.dead.test","pref":10,"code":"SERVFAIL"}]}\n'
        .. '{"input":"gone.test","status":"error","code":"NXDOMAIN","class":'
        .. '"permanent","message":"gone.test: domain does not exist"}\n', out)
    end)

    it("returns the highest status of all inputs", function()
      local function status(...) return select(3, main { ... }) end
      assert.are.equal(0, status("user@example.test"))
      assert.are.equal(65, status("user@example.test", "user@"))
      assert.are.equal(68, status("gone.test", "user@"))
      assert.are.equal(69, status("user@", "us.test", "gone.test"))
      assert.are.equal(75, status("us.test", "slow.test", "user@"))
      -- a code of no known class counts as temporary
      assert.are.equal(75, status("odd.test"))
    end)

    it("submits every input when the resolver can, keeping input order",
       function()
      use_submit = true
      local out, _, status = main { "-j", "user@example.test", "gone.test",
                                    "user@" }
      assert.are.equal(68, status)
      local p = decode_lines(out)
      assert.are.same({ "user@example.test", "gone.test", "user@" },
                      { p[1].input, p[2].input, p[3].input })
      assert.are.same({ "ok", "NXDOMAIN", "BADNAME" },
                      { p[1].status, p[2].code, p[3].code })
    end)

    it("passes the options to resolver{} and names a rejected one", function()
      results.x = { PLAN }
      assert.are.equal(0, select(3, main { "--self", "mx.example",
                                           "--family", "ipv4", "x" }))
      assert.are.same({ self = { "mx.example" }, family = "ipv4" }, seen)
      -- mxroute.options names the field as data, the flag comes from it
      local out, err, status = main { "--self", "*", "x" }
      assert.are.equal(64, status)
      assert.are.equal("", out)
      assert.are.equal("mxroute: bad value for --self: mxroute.resolver: "
                       .. "option 'self': not a host name or address: '*'\n"
                       .. "Try 'mxroute --help' for more information.\n", err)
      -- a failure naming no field is not the user's flag
      out, err, status = main { "--self", "bad", "x" }
      assert.are.equal(75, status)
      assert.are.equal("", out)
      assert.are.equal("mxroute: cannot create a resolver: resolver: bad "
                       .. "field 'self': bad\n", err)
    end)

    it("prints the version of the module", function()
      assert.are.equal("mxroute 9.8.7\n", (main { "--version" }))
    end)

    it("escapes control and non-ASCII bytes in human output", function()
      results["a\nb\255"] = { nil, "bad\tname", "BADNAME" }
      assert.are.equal("a\\x0ab\\xff: BADNAME (invalid): bad\\x09name\n",
                       (main { "a\nb\255" }))
    end)
  end)
end)
