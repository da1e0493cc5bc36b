--- The `mxroute` command line: argument parsing, resolution, output.
--
-- `bin/mxroute` only sets up the module paths and calls `M.main`; all the
-- logic lives here so that it can be tested in-process. The reference for
-- users is `doc/cli.md`.
local json = require "mxroute.json"

local M = {}

-- sysexits(3) codes.
M.EX_OK = 0
M.EX_USAGE = 64
M.EX_DATAERR = 65     -- invalid input (BADNAME)
M.EX_NOINPUT = 66     -- an input file cannot be opened
M.EX_NOHOST = 68      -- permanent failure
M.EX_UNAVAILABLE = 69 -- loop: we are the best MX
M.EX_SOFTWARE = 70    -- internal error (module missing, bug)
M.EX_TEMPFAIL = 75    -- temporary failure

--- Exit status of one failed input, by its error class.
M.class_status = {
  invalid = M.EX_DATAERR,
  permanent = M.EX_NOHOST,
  loop = M.EX_UNAVAILABLE,
  temporary = M.EX_TEMPFAIL,
}

--- How many inputs are in flight at once unless --concurrency says, and
-- the most it may say.
M.CONCURRENCY = 32
M.MAX_CONCURRENCY = 10000

M.usage = [[
Usage: mxroute [options] ADDRESS...
       mxroute [options] -f FILE [ADDRESS...]

Print where mail for each ADDRESS (local@domain, local@[IP] or a bare
domain) is delivered: the MX hosts in delivery order and their addresses.

Options:
  -j, --json                  one JSON object per ADDRESS, one per line
  -f, --file FILE             read ADDRESSes from FILE, one per line ("-":
                              standard input; blank lines and lines
                              starting with # are skipped); repeatable,
                              read after the ADDRESS arguments
      --unordered             print each result as soon as it is known
                              (default: in input order)
      --concurrency N         resolve at most N inputs at a time
                              (1..10000, default 32)
      --nameserver IP[:PORT]  DNS server to ask (repeatable; IPv6 as
                              [::1]:5353 or ::1); default: the system's
      --self NAME|ADDR        a name or address of this host (repeatable)
      --self-interfaces       this host's interface addresses are self too
      --family any|ipv4|ipv6  which addresses to use (default: any)
      --prefer ipv4|ipv6|none the family to try first within a host
      --seed N                seed for the random order of equal
                              preferences (reproducible output)
      --timeout SECONDS       timeout of one DNS query try (default: 2)
      --tries N               tries per DNS query (default: 3)
      --allow-mx-to-ip        use an MX exchange that is an IP address as
                              the address itself
      --ignore-targets LIST   comma-separated CIDRs whose addresses are
                              dropped, instead of the default private,
                              loopback, link-local, ... ranges; "none"
                              drops nothing
      --max-hosts N           use at most N MX hosts per domain
      --routes FILE           route recipients by a Postfix transport(5)
                              table (relays, ports, error:, retry:)
      --max-addrs N           use at most N addresses per host
      --trace                 print every DNS query on standard error,
                              one line each: name, type, server,
                              udp|tcp, rcode (or TIMEOUT, NETWORK, ...),
                              time in milliseconds
  -h, --help                  show this help and exit
  -V, --version               show the version and exit
      --                      end of options

Exit status: 0 every ADDRESS has a delivery plan, 64 usage error,
65 invalid input, 66 an input file cannot be opened, 68 permanent
failure, 69 we are the best MX (loop), 75 temporary failure; with
several ADDRESSes, the highest of these. On SIGINT or SIGTERM the
inputs in flight are reported as CANCELLED and the status is 75.
]]

local HINT = "Try 'mxroute --help' for more information.\n"

-- Key order of the JSON output (DESIGN section 2).
local PLAN_KEYS = { "input", "status", "domain", "implicit", "hosts",
                    "targets", "skipped", "self_pref", "route", "ttl",
                    "stale" }
local ERROR_KEYS = { "input", "status", "code", "class", "message",
                     "skipped", "route", "enhanced", "ttl" }
local HOST_KEYS = { "name", "pref", "addrs" }
local TARGET_KEYS = { "host", "pref", "addr", "family", "port", "fallback" }
local ROUTE_KEYS = { "key", "transport", "nexthop" }
local SKIP_KEYS = { "name", "pref", "code" }


------------------------------------------------------------------------
-- argument values

--- Parse a `--nameserver` value with the library's one nameserver parser
-- (`mxroute.options.nameserver`, in C, shared with the Lua options and
-- `mxroute.ngx`): IPv4 `A.B.C.D[:PORT]`, IPv6 `[ADDR]:PORT`, `[ADDR]` or
-- bare `ADDR`. Returns the canonical form given to the library
-- (`"192.0.2.1:53"`, `"[2001:db8::1]:5353"`; the port defaults to 53), or
-- `nil, message` (the library's message).
function M.parse_nameserver(s)
  local loaded, options = pcall(require, "mxroute.options")
  if not loaded then return s end -- the run reports the missing module
  local ns, why = options.nameserver(s)
  if not ns then return nil, why end
  return ns.name
end

-- A whole number >= min, written in decimal digits (at most 15, so that
-- it is exact on every Lua).
local function parse_count(s, min)
  if not s:match("^%d+$") or #s > 15 then return nil end
  local n = tonumber(s)
  if n < min then return nil end
  return n
end

-- A positive number of seconds: "2", "0.25", ".5", "1.".
local function parse_seconds(s)
  if not (s:match("^%d+%.?%d*$") or s:match("^%.%d+$")) then return nil end
  local n = tonumber(s)
  if not n or n <= 0 or n == math.huge then return nil end
  return n
end

------------------------------------------------------------------------
-- argument parsing

-- Long options: takes_value, and the function storing the value into
-- cfg (returns an error message for a bad value).
local OPTIONS = {}

OPTIONS.json = { false, function(cfg) cfg.json = true end }
OPTIONS.help = { false, function(cfg) cfg.help = true end }
OPTIONS.version = { false, function(cfg) cfg.version = true end }
OPTIONS["allow-mx-to-ip"] = { false, function(cfg)
  cfg.resolver.allow_mx_to_ip = true
end }
OPTIONS["self-interfaces"] = { false, function(cfg)
  cfg.resolver.self_interfaces = true
end }

OPTIONS.nameserver = { true, function(cfg, v)
  local ns, why = M.parse_nameserver(v)
  if not ns then return why end
  local list = cfg.resolver.nameservers or {}
  list[#list + 1] = ns
  cfg.resolver.nameservers = list
end }

OPTIONS.self = { true, function(cfg, v)
  if v == "" then return "empty name" end
  local list = cfg.resolver.self or {}
  list[#list + 1] = v
  cfg.resolver.self = list
end }

OPTIONS.family = { true, function(cfg, v)
  if v ~= "any" and v ~= "ipv4" and v ~= "ipv6" then
    return "expected any, ipv4 or ipv6"
  end
  cfg.resolver.family = v
end }

OPTIONS.prefer = { true, function(cfg, v)
  if v ~= "ipv4" and v ~= "ipv6" and v ~= "none" then
    return "expected ipv4, ipv6 or none"
  end
  cfg.resolver.prefer = v ~= "none" and v or nil
end }

OPTIONS.seed = { true, function(cfg, v)
  local n = parse_count(v, 0)
  if not n then return "expected a whole number" end
  cfg.resolver.seed = n
end }

OPTIONS.timeout = { true, function(cfg, v)
  local n = parse_seconds(v)
  if not n then return "expected a positive number of seconds" end
  cfg.resolver.timeout = n
end }

OPTIONS.tries = { true, function(cfg, v)
  local n = parse_count(v, 1)
  if not n then return "expected a whole number of at least 1" end
  cfg.resolver.tries = n
end }

OPTIONS["max-hosts"] = { true, function(cfg, v)
  local n = parse_count(v, 1)
  if not n then return "expected a whole number of at least 1" end
  cfg.resolver.max_hosts = n
end }

-- "none" clears the list (allow every address); other values add CIDRs,
-- so that the option may be repeated.
OPTIONS["ignore-targets"] = { true, function(cfg, v)
  if v == "none" then
    cfg.resolver.ignore_targets = {}
    return
  end
  local list = cfg.resolver.ignore_targets or {}
  for item in (v .. ","):gmatch("([^,]*),") do
    item = item:match("^%s*(.-)%s*$")
    if item == "" then return "empty CIDR in list" end
    list[#list + 1] = item
  end
  cfg.resolver.ignore_targets = list
end }

-- --routes FILE: read when the resolver is made (run), so that a bad
-- line is reported with its number.
OPTIONS.routes = { true, function(cfg, v) cfg.routes_file = v end }

OPTIONS["max-addrs"] = { true, function(cfg, v)
  local n = parse_count(v, 1)
  if not n then return "expected a whole number of at least 1" end
  cfg.resolver.max_addrs = n
end }

OPTIONS.file = { true, function(cfg, v)
  if v == "" then return "empty file name" end
  cfg.files[#cfg.files + 1] = v
end }

OPTIONS.unordered = { false, function(cfg) cfg.unordered = true end }
OPTIONS.trace = { false, function(cfg) cfg.trace = true end }

OPTIONS.concurrency = { true, function(cfg, v)
  local n = parse_count(v, 1)
  if not n or n > M.MAX_CONCURRENCY then
    return "expected a whole number from 1 to " .. M.MAX_CONCURRENCY
  end
  cfg.concurrency = n
end }

local SHORT = { ["-j"] = "json", ["-h"] = "help", ["-V"] = "version",
                ["-f"] = "file" }

-- Text for a terminal: control and non-ASCII bytes as \xHH (the way
-- the library's own messages show them).
local function visible(s)
  return (s:gsub("[%c\128-\255]", function(c)
    return string.format("\\x%02x", c:byte())
  end))
end

--- Parse the arguments (a list of strings, without the program name).
-- Returns `cfg = { json, help, version, inputs = {...}, files = {...},
-- unordered, concurrency, resolver = {...} }` where `inputs` are the
-- ADDRESS arguments, `files` the `-f` files in order and `resolver` the
-- `mxroute.resolver` options given, or
-- `nil, message` on a usage error. Options and ADDRESSes may be mixed;
-- `--` ends the options; `--opt=value` is the same as `--opt value`.
function M.parse(argv)
  local cfg = { json = false, help = false, version = false, inputs = {},
                files = {}, unordered = false,
                concurrency = M.CONCURRENCY, resolver = {} }
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    i = i + 1
    if a == "--" then
      for j = i, n do cfg.inputs[#cfg.inputs + 1] = argv[j] end
      break
    elseif a:sub(1, 1) ~= "-" or a == "-" then
      cfg.inputs[#cfg.inputs + 1] = a
    else
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then
        name = SHORT[a] or a:match("^%-%-(.+)$")
      end
      local opt = name and OPTIONS[name]
      if not opt then
        return nil, "unknown option '" .. visible(a) .. "'"
      end
      if opt[1] then
        if value == nil then
          if i > n then
            return nil, "option '--" .. name .. "' needs a value"
          end
          value = argv[i]
          i = i + 1
        end
        local why = opt[2](cfg, value)
        if why then
          return nil, "bad value '" .. visible(value) .. "' for --" .. name
                      .. ": " .. why
        end
      else
        if value ~= nil then
          return nil, "option '--" .. name .. "' takes no value"
        end
        opt[2](cfg)
      end
    end
  end
  if not (cfg.help or cfg.version) and #cfg.inputs == 0
     and #cfg.files == 0 then
    return nil, "no ADDRESS given"
  end
  return cfg
end

------------------------------------------------------------------------
-- results

-- The class of a code, or nil for a code the module does not know.
local function class_of(classify, code)
  local ok, class = pcall(classify, code)
  return ok and type(class) == "string" and class or nil
end

--- One input's outcome as the CLI prints it: `{ input, plan }` on
-- success, `{ input, code, class, message, skipped }` on failure, from
-- the results of `r:resolve` (`extra` is the 4th value of a failure;
-- its `skipped` list is kept when not empty). `classify` is
-- `mxroute.class`.
function M.outcome(input, classify, plan, message, code, extra)
  if plan then return { input = input, plan = plan } end
  code = code ~= nil and tostring(code) or "UNKNOWN"
  local info = type(extra) == "table" and extra or {}
  return {
    input = input, code = code,
    class = class_of(classify, code) or "temporary",
    message = message ~= nil and tostring(message) or code,
    route = type(info.route) == "table" and info.route or nil, -- DESIGN 7
    enhanced = info.enhanced,
    -- only a non-empty list is worth reporting with a failure
    skipped = type(extra) == "table" and type(extra.skipped) == "table"
              and #extra.skipped > 0 and extra.skipped or nil,
    ttl = type(extra) == "table" and extra.ttl or nil,
  }
end

--- Exit status of one outcome.
function M.status(o)
  if o.plan then return M.EX_OK end
  return M.class_status[o.class] or M.EX_TEMPFAIL
end

local function skipped_json(list)
  local out = json.array {}
  for _, s in ipairs(list or {}) do
    out[#out + 1] = json.object({ name = s.name, pref = s.pref,
                                  code = s.code }, SKIP_KEYS)
  end
  return out
end

local function route_json(r)
  if not r then return nil end
  return json.object({ key = r.key, transport = r.transport,
                       nexthop = r.nexthop }, ROUTE_KEYS)
end

--- The JSON line (without newline) for one outcome.
function M.format_json(o)
  if not o.plan then
    return json.encode(json.object({
      input = o.input, status = "error", code = o.code, class = o.class,
      message = o.message,
      skipped = o.skipped and skipped_json(o.skipped) or nil,
      route = route_json(o.route), enhanced = o.enhanced, ttl = o.ttl,
    }, ERROR_KEYS))
  end
  local p = o.plan
  local hosts, targets = json.array {}, json.array {}
  for _, h in ipairs(p.hosts or {}) do
    local addrs = json.array {}
    for k, a in ipairs(h.addrs or {}) do addrs[k] = a end
    hosts[#hosts + 1] = json.object({ name = h.name, pref = h.pref,
                                      addrs = addrs }, HOST_KEYS)
  end
  for _, t in ipairs(p.targets or {}) do
    targets[#targets + 1] = json.object({ host = t.host, pref = t.pref,
                                          addr = t.addr,
                                          family = t.family, port = t.port,
                                          fallback = t.fallback or nil },
                                        TARGET_KEYS)
  end
  return json.encode(json.object({
    input = o.input, status = "ok", domain = p.domain,
    implicit = p.implicit and true or false,
    hosts = hosts, targets = targets, skipped = skipped_json(p.skipped),
    self_pref = p.self_pref, route = route_json(p.route), ttl = p.ttl,
    stale = p.stale or nil,
  }, PLAN_KEYS))
end

local function pad_left(s, w) return string.rep(" ", w - #s) .. s end
local function pad_right(s, w) return s .. string.rep(" ", w - #s) end

-- Rows { pref, name, text } as aligned lines, each prefixed by two
-- spaces; widths shared by every row given.
local function table_lines(rows, lines)
  local wp, wn = #"pref", 0
  for _, row in ipairs(rows) do
    if #row[1] > wp then wp = #row[1] end
    if #row[2] > wn then wn = #row[2] end
  end
  for _, row in ipairs(rows) do
    if row.heading then
      lines[#lines + 1] = "  " .. row.heading
    else
      local line = "  " .. pad_left(row[1], wp) .. "  "
                   .. pad_right(row[2], wn) .. "  " .. row[3]
      lines[#lines + 1] = (line:gsub("%s+$", ""))
    end
  end
end

local function skipped_rows(rows, list, classify)
  if not list or #list == 0 then return end
  rows[#rows + 1] = { "", "", heading = "skipped:" }
  for _, s in ipairs(list) do
    local code = tostring(s.code)
    local class = class_of(classify, code) or "temporary"
    rows[#rows + 1] = { tostring(s.pref), visible(tostring(s.name)),
                        code .. " (" .. class .. ")" }
  end
end

--- The human-readable text for one outcome: a block of lines, each ending
-- in a newline. `classify` is `mxroute.class` (for skipped hosts).
function M.format_text(o, classify)
  local lines = {}
  local rows = {}
  local function route_line(r, enhanced)
    if not r then return end
    lines[#lines + 1] = "  route: " .. visible(tostring(r.key)) .. " -> "
      .. visible(tostring(r.transport)) .. ":" .. visible(tostring(r.nexthop))
      .. (enhanced and " (status " .. visible(tostring(enhanced)) .. ")" or "")
  end
  if not o.plan then
    lines[1] = visible(o.input) .. ": " .. o.code .. " (" .. o.class .. "): "
               .. visible(o.message)
    route_line(o.route, o.enhanced)
    skipped_rows(rows, o.skipped, classify)
  else
    local p = o.plan
    local notes = {}
    if p.implicit then notes[#notes + 1] = "implicit MX" end
    if p.self_pref then
      notes[#notes + 1] = "we are MX at preference " .. tostring(p.self_pref)
    end
    lines[1] = visible(o.input) .. " -> " .. visible(tostring(p.domain))
               .. (#notes > 0 and " (" .. table.concat(notes, "; ") .. ")"
                   or "")
    route_line(p.route)
    -- ports and fallback relays (DESIGN 7), shown when not all plain 25
    local where, routed = {}, p.route ~= nil
    for _, t in ipairs(p.targets or {}) do
      local k = tostring(t.host)
      if not where[k] then
        where[k] = " port " .. tostring(t.port) .. (t.fallback and " (fallback)" or "")
        if t.fallback or (t.port and t.port ~= 25) then routed = true end
      end
    end
    rows[1] = { "pref", "host", "addresses" }
    for _, h in ipairs(p.hosts or {}) do
      local addrs = #(h.addrs or {}) > 0 and table.concat(h.addrs, ", ")
                    or "-"
      if routed then addrs = addrs .. (where[tostring(h.name)] or "") end
      rows[#rows + 1] = { tostring(h.pref), visible(tostring(h.name)), addrs }
    end
    skipped_rows(rows, p.skipped, classify)
  end
  table_lines(rows, lines)
  return table.concat(lines, "\n") .. "\n"
end

------------------------------------------------------------------------
-- running

--- The inputs of cfg, in order: the ADDRESS arguments, then the lines of
-- each `-f` file (`cfg.handles`: `core.lines` readers, or anything with
-- `next([block])` and `pollfd()`). A line is trimmed; blank lines and
-- lines starting with `#` are skipped. Returns `next_input(block)`,
-- giving the next input, or `nil, "wait"` when the next line has not
-- arrived yet (never with block), or nil at the end; and `fd()`, the
-- descriptor to wait on for the next line. Lines are read only when
-- asked for, so that a file of any length takes no memory.
function M.reader(cfg)
  local args, k = cfg.inputs, 0
  local handles, h = cfg.handles or {}, 1
  local function next_input(block)
    if k < #args then
      k = k + 1
      return args[k]
    end
    while handles[h] do
      local line, why = handles[h]:next(block)
      if line == nil then
        if why == "wait" then return nil, "wait" end
        h = h + 1
      else
        line = line:match("^%s*(.-)%s*$")
        if line ~= "" and line:sub(1, 1) ~= "#" then return line end
      end
    end
    return nil
  end
  local function fd()
    return handles[h] and handles[h]:pollfd() or nil
  end
  return next_input, fd
end

-- Resolve every input that next_input (M.reader) gives with r, calling
-- done(i, input, plan, message, code, extra) once per input (i counts
-- from 1 in input order; completions come in any order). At most
-- cfg.concurrency inputs are in flight; may_submit(i) (nil: always)
-- holds back input i while it returns false. With watch (a
-- core.sigwatch), one poll waits for the resolver, the next input line
-- and SIGINT/SIGTERM together; a signal ends the run: every input in
-- flight, and every ADDRESS argument not yet submitted, is reported as
-- CANCELLED. Without watch, input lines are read blocking. flush() runs
-- before waiting for input, so that what is printed is seen meanwhile.
-- Returns the signal's name, or nil.
local function resolve_all(r, cfg, next_input, input_fd, done, may_submit,
                           watch, flush)
  if type(r.submit) ~= "function" or type(r.step) ~= "function" then
    local i = 0
    for input in function() return next_input(true) end do
      i = i + 1
      done(i, input, r:resolve(input))
    end
    return nil
  end
  local limit = cfg.concurrency
  local submitted, inflight, exhausted, stopping = 0, 0, false, false
  local waiting = false -- the next line has not arrived yet
  local fill
  local function submit(i, input)
    local q
    q = r:submit(input, function(plan, message, code)
      inflight = inflight - 1
      if stopping then -- r:close() after a signal
        done(i, input, nil, tostring(input) .. ": cancelled by " .. stopping,
             "CANCELLED")
      elseif q and type(q.result) == "function" then
        done(i, input, q:result()) -- may carry a 4th value (skipped hosts)
      else
        done(i, input, plan, message, code)
      end
      if not stopping then fill() end
    end)
  end
  local function room()
    return inflight < limit and (not may_submit or may_submit(submitted + 1))
  end
  -- Submit inputs while there is room and they have arrived: called from
  -- r:step (through the callbacks above) and from the loop below.
  function fill()
    while not exhausted and not waiting and room() do
      local input, why = next_input(not watch)
      if input ~= nil then
        submitted = submitted + 1
        inflight = inflight + 1
        submit(submitted, input)
      elseif why == "wait" then
        waiting = true
      else
        exhausted = true
      end
    end
  end
  fill()
  local caught
  while inflight > 0 or not exhausted do
    if watch then
      -- wait for the resolver, the next line (when there is room for
      -- it) or a signal, then run what is ready
      local t = inflight > 0 and (r:timeout() or 1) or nil
      local fd = waiting and room() and input_fd() or nil
      if fd then flush() end
      watch:wait(t, r:pollfd(), fd)
      caught = watch:caught()
      if caught then break end
      r:step(0)
    else
      -- nil timeout: no timer pending; still wake up now and then.
      r:step(r:timeout() or 1)
    end
    waiting = false
    fill()
  end
  if caught then
    stopping = caught
    r:close() -- runs the callbacks of the inputs in flight: CANCELLED
    -- the ADDRESS arguments not submitted yet (file lines not read yet
    -- are not read at all)
    while submitted < #cfg.inputs do
      submitted = submitted + 1
      local input = cfg.inputs[submitted]
      done(submitted, input, nil, tostring(input) .. ": cancelled by "
           .. caught, "CANCELLED")
    end
  end
  return caught
end

-- Strip the "file:line: " prefix of an error raised by Lua code.
local function error_text(e)
  e = tostring(e)
  return (e:gsub("^[^:\n]*:%d+: ", ""))
end

-- Open every -f file ("-": standard input) into cfg.handles, as
-- core.lines readers, or return a message naming the one that cannot be
-- opened.
local function open_files(cfg, core)
  cfg.handles = {}
  for k, name in ipairs(cfg.files) do
    local lr, why = core.lines(name == "-" and 0 or name)
    if not lr then return why or name end
    cfg.handles[k] = lr
  end
  return nil
end

local function close_files(cfg)
  for _, lr in ipairs(cfg.handles or {}) do pcall(lr.close, lr) end
end

--- The --trace line of a query event (the resolver's on_query): "query
-- NAME TYPE SERVER udp|tcp RESULT TIME ms", RESULT the reply's rcode, or
-- the code of a try without a usable reply (TIMEOUT, NETWORK, ...), or
-- "RCODE/CODE" when a reply was refused (FORMERR).
function M.trace_line(ev)
  local result = ev.rcode or ev.status
  if ev.rcode and ev.status ~= "OK" and ev.status ~= ev.rcode then
    result = ev.rcode .. "/" .. ev.status
  end
  return ("query %s %s %s %s %s %.1f ms"):format(visible(ev.name), ev.type,
    ev.server or "-", ev.tcp and "tcp" or "udp", result, ev.rtt * 1000)
end

--- on_query for --trace: each query as a line on err.
function M.tracer(err)
  return function(ev) err:write(M.trace_line(ev), "\n") end
end

-- In input order, at most HOLD times --concurrency results wait for an
-- earlier input: the bound on memory when one input is slow.
M.HOLD = 16

local function run(cfg, out, err)
  local loaded, mxroute = pcall(require, "mxroute")
  if not loaded then
    err:write("mxroute: cannot load the mxroute module: ",
              error_text(mxroute), "\n")
    return M.EX_SOFTWARE
  end
  if cfg.version then
    out:write("mxroute ", tostring(mxroute.version), "\n")
    return M.EX_OK
  end
  if cfg.routes_file then
    local f, why = io.open(cfg.routes_file, "rb")
    local text = f and f:read("*a")
    if f then f:close() end
    if not text then
      err:write("mxroute: --routes: cannot read ", visible(tostring(why or cfg.routes_file)), "\n")
      return M.EX_USAGE
    end
    local ok, rt = pcall(mxroute.routes.postfix, text)
    if not ok then
      err:write("mxroute: --routes ", visible(cfg.routes_file), ": ",
                (error_text(rt):gsub("^mxroute%.routes%.postfix: ", "")), "\n")
      return M.EX_USAGE
    end
    cfg.resolver.routes = rt
  end
  local core = require "mxroute.core"
  local why = open_files(cfg, core)
  if why then
    close_files(cfg)
    err:write("mxroute: cannot read inputs: ", why, "\n")
    return M.EX_NOINPUT
  end
  if cfg.trace then cfg.resolver.on_query = M.tracer(err) end
  -- the library's own checks, which name the field as data: the flag
  -- that set it is in mxroute.options.FIELDS
  local options = require "mxroute.options"
  local set, msg, field = options.resolver(cfg.resolver, "mxroute.resolver")
  local flag = not set and field and options.FIELDS[field]
  if flag and flag.flag then
    close_files(cfg)
    err:write("mxroute: bad value for ", flag.flag, ": ", msg, "\n", HINT)
    return M.EX_USAGE
  end
  local made, r = pcall(mxroute.resolver, cfg.resolver)
  if not made then
    close_files(cfg)
    err:write("mxroute: cannot create a resolver: ", error_text(r), "\n")
    return M.EX_TEMPFAIL
  end
  local outcomes, printed, worst = {}, 0, M.EX_OK
  local function print_one(o)
    printed = printed + 1
    if cfg.json then
      out:write(M.format_json(o), "\n")
    else
      if printed > 1 then out:write("\n") end
      out:write(M.format_text(o, mxroute.class))
    end
    if cfg.unordered and out.flush then out:flush() end
  end
  local function done(i, input, ...)
    local o = M.outcome(input, mxroute.class, ...)
    local st = M.status(o)
    if st > worst then worst = st end
    if cfg.unordered then return print_one(o) end
    outcomes[i] = o
    -- print in input order, as soon as every earlier input is printed
    while outcomes[printed + 1] do
      local next_o = outcomes[printed + 1]
      outcomes[printed + 1] = nil
      print_one(next_o)
    end
  end
  local may_submit
  if not cfg.unordered then
    local hold = M.HOLD * cfg.concurrency
    may_submit = function(i) return i - printed <= hold end
  end
  -- SIGINT/SIGTERM arrive on a signalfd while inputs are resolved (a
  -- stand-in resolver without a descriptor goes without)
  local watch = type(r.pollfd) == "function" and core.sigwatch() or nil
  local n_in = 0
  local next_input, input_fd = M.reader(cfg)
  local counted = function(block)
    local input, wait = next_input(block)
    if input ~= nil then n_in = n_in + 1 end
    return input, wait
  end
  local flush = function() if out.flush then out:flush() end end
  local ok, e = pcall(resolve_all, r, cfg, counted, input_fd, done,
                      may_submit, watch, flush)
  pcall(r.close, r)
  if watch then pcall(watch.close, watch) end
  close_files(cfg)
  if not ok then
    err:write("mxroute: internal error: ", error_text(e), "\n")
    return M.EX_SOFTWARE
  end
  if e then -- the signal caught
    if out.flush then out:flush() end
    err:write("mxroute: ", e, ": pending inputs cancelled\n")
    return M.EX_TEMPFAIL
  end
  if printed ~= n_in then
    err:write("mxroute: internal error: ", n_in - printed,
              " input(s) left without a result\n")
    return M.EX_SOFTWARE
  end
  return worst
end

--- Run the command line. `argv` is the list of arguments (without the
-- program name); `out` and `err` are file-like objects with `write`
-- (default `io.stdout`, `io.stderr`). Returns the exit status.
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  local list = {}
  for i = 1, #(argv or {}) do list[i] = tostring(argv[i]) end
  local cfg, why = M.parse(list)
  if not cfg then
    err:write("mxroute: ", why, "\n", HINT)
    return M.EX_USAGE
  end
  if cfg.help then
    out:write(M.usage)
    return M.EX_OK
  end
  local ok, st = pcall(run, cfg, out, err)
  if not ok then
    err:write("mxroute: internal error: ", error_text(st), "\n")
    st = M.EX_SOFTWARE
  end
  if out.flush then out:flush() end
  return st
end

return M
