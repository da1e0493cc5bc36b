--- The `mxroute` command line: argument parsing, resolution, output.
--
-- `bin/mxroute` only sets up the module paths and calls `M.main`; all the
-- logic lives here so that it can be tested in-process. The reference for
-- users is `doc/cli.md`.
local json = require "mxroute.json"
local options = require "mxroute.options" -- the options, and their flags

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

-- Append v to the list cfg.resolver[name].
local function append(cfg, name, v)
  local list = cfg.resolver[name] or {}
  list[#list + 1] = v
  cfg.resolver[name] = list
end

-- How the flag of an option of each kind (mxroute.options.FIELDS) turns
-- its value into the option: set(cfg, f, value) -> nil | why the value
-- is bad. A boolean's flag takes no value and sets true. The library
-- checks the result again (ranges, CIDRs, names) and names the flag.
local SET = {}

function SET.boolean(cfg, f) cfg.resolver[f.name] = true end

function SET.integer(cfg, f, v)
  local min = math.max(f.min, 0)
  local n = parse_count(v, min)
  if not n then
    return "expected a whole number" .. (min > 0 and (" of at least %d"):format(min) or "")
  end
  cfg.resolver[f.name] = n
end

function SET.seconds(cfg, f, v)
  local n = parse_seconds(v)
  if not n then return "expected a positive number of seconds" end
  cfg.resolver[f.name] = n
end

-- one of the words; the default is the same as no value
function SET.oneof(cfg, f, v)
  for _, w in ipairs(f.values) do
    if v == w then
      cfg.resolver[f.name] = v ~= f.default and v or nil
      return
    end
  end
  local words = table.concat(f.values, ", ", 1, #f.values - 1)
  return "expected " .. words .. " or " .. f.values[#f.values]
end

function SET.names(cfg, f, v)
  if v == "" then return "empty name" end
  append(cfg, f.name, v)
end

-- "none" clears the list (allow every address); other values add CIDRs,
-- so that the flag may be repeated.
function SET.cidrs(cfg, f, v)
  if v == "none" then
    cfg.resolver[f.name] = {}
    return
  end
  for item in (v .. ","):gmatch("([^,]*),") do
    item = item:match("^%s*(.-)%s*$")
    if item == "" then return "empty CIDR in list" end
    append(cfg, f.name, item)
  end
end

function SET.nameservers(cfg, f, v)
  local ns, why = M.parse_nameserver(v)
  if not ns then return why end
  append(cfg, f.name, ns)
end

-- --routes FILE: read when the resolver is made (run), so that a bad
-- line is reported with its number.
function SET.routes(cfg, _, v) cfg.routes_file = v end

-- The kinds whose default --help shows.
local SHOWS_DEFAULT = { integer = true, seconds = true, oneof = true }

------------------------------------------------------------------------
-- argument parsing

--- The flags, in --help order: the command's own around the library's
-- options (mxroute.options.FIELDS, those with a flag). Each is { flag,
-- short, arg (nil: takes no value), help, option (the library option it
-- sets), set(cfg, value) -> nil | why the value is bad }.
local FLAGS = {
  { flag = "--json", short = "-j", help = "one JSON object per ADDRESS, one per line",
    set = function(cfg) cfg.json = true end },
  { flag = "--file", short = "-f", arg = "FILE",
    help = 'read ADDRESSes from FILE, one per line ("-": standard input; blank lines '
      .. "and lines starting with # are skipped); repeatable, read after the ADDRESS arguments",
    set = function(cfg, v)
      if v == "" then return "empty file name" end
      cfg.files[#cfg.files + 1] = v
    end },
  { flag = "--unordered",
    help = "print each result as soon as it is known (default: in input order)",
    set = function(cfg) cfg.unordered = true end },
  { flag = "--concurrency", arg = "N",
    help = ("resolve at most N inputs at a time (1..%d, default %d)")
      :format(M.MAX_CONCURRENCY, M.CONCURRENCY),
    set = function(cfg, v)
      local n = parse_count(v, 1)
      if not n or n > M.MAX_CONCURRENCY then
        return "expected a whole number from 1 to " .. M.MAX_CONCURRENCY
      end
      cfg.concurrency = n
    end },
}
for _, f in ipairs(options.LIST) do
  if f.flag then
    local help = f.cli or f.help
    if SHOWS_DEFAULT[f.kind] and f.default then help = help .. " (default: " .. f.default .. ")" end
    FLAGS[#FLAGS + 1] = {
      flag = f.flag, help = help, option = f.name,
      arg = f.kind ~= "boolean" and (f.arg or table.concat(f.values, "|")) or nil,
      set = function(cfg, v) return SET[f.kind](cfg, f, v) end,
    }
  end
end
for _, t in ipairs {
  { flag = "--trace",
    help = "print every DNS query on standard error, one line each: name, type, server, "
      .. "udp|tcp, rcode (or TIMEOUT, NETWORK, ...), time in milliseconds",
    set = function(cfg) cfg.trace = true end },
  { flag = "--help", short = "-h", help = "show this help and exit",
    set = function(cfg) cfg.help = true end },
  { flag = "--version", short = "-V", help = "show the version and exit",
    set = function(cfg) cfg.version = true end },
} do FLAGS[#FLAGS + 1] = t end

M.FLAGS = FLAGS

-- Long option name -> its flag; short option -> long name.
local OPTIONS, SHORT = {}, {}
for _, t in ipairs(FLAGS) do
  local name = t.flag:sub(3)
  OPTIONS[name] = t
  if t.short then SHORT[t.short] = name end
end

-- The text of --help: each flag, its argument and its help wrapped at 78
-- columns, the help from column 31.
local function flag_lines()
  local out = {}
  local function add(left, help)
    local line, fresh = left .. string.rep(" ", math.max(1, 30 - #left)), true
    for word in help:gmatch("%S+") do
      if not fresh and #line + 1 + #word > 78 then
        out[#out + 1] = line
        line, fresh = string.rep(" ", 30), true
      end
      line, fresh = line .. (fresh and "" or " ") .. word, false
    end
    out[#out + 1] = line
  end
  for _, t in ipairs(FLAGS) do
    add("  " .. (t.short and t.short .. ", " or "    ") .. t.flag .. (t.arg and " " .. t.arg or ""),
        t.help)
  end
  add("      --", "end of options")
  return table.concat(out, "\n")
end

--- The text of --help (the flags generated from FLAGS).
M.usage = [[
Usage: mxroute [options] ADDRESS...
       mxroute [options] -f FILE [ADDRESS...]

Print where mail for each ADDRESS (local@domain, local@[IP] or a bare
domain) is delivered: the MX hosts in delivery order and their addresses.

Options:
]] .. flag_lines() .. [[


Exit status: 0 every ADDRESS has a delivery plan, 64 usage error,
65 invalid input, 66 an input file cannot be opened, 68 permanent
failure, 69 we are the best MX (loop), 75 temporary failure; with
several ADDRESSes, the highest of these. On SIGINT or SIGTERM the
inputs in flight are reported as CANCELLED and the status is 75.
]]

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
      if opt.arg then
        if value == nil then
          if i > n then
            return nil, "option '--" .. name .. "' needs a value"
          end
          value = argv[i]
          i = i + 1
        end
        local why = opt.set(cfg, value)
        if why then
          return nil, "bad value '" .. visible(value) .. "' for --" .. name
                      .. ": " .. why
        end
      else
        if value ~= nil then
          return nil, "option '--" .. name .. "' takes no value"
        end
        opt.set(cfg)
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

-- --routes FILE read into cfg.resolver.routes; nil, or the exit status
-- after a message on err.
local function load_routes(cfg, mxroute, err)
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
  return nil
end

-- The resolver of cfg, its -f files open | nil, exit status (after a
-- message on err; nothing left open).
local function make_resolver(cfg, mxroute, core, err)
  local why = open_files(cfg, core)
  if why then
    close_files(cfg)
    err:write("mxroute: cannot read inputs: ", why, "\n")
    return nil, M.EX_NOINPUT
  end
  if cfg.trace then cfg.resolver.on_query = M.tracer(err) end
  -- the library's own checks, which name the field as data: the flag
  -- that set it is in mxroute.options.FIELDS
  local set, msg, field = options.resolver(cfg.resolver, "mxroute.resolver")
  local flag = not set and field and options.FIELDS[field]
  if flag and flag.flag then
    close_files(cfg)
    err:write("mxroute: bad value for ", flag.flag, ": ", msg, "\n", HINT)
    return nil, M.EX_USAGE
  end
  local made, r = pcall(mxroute.resolver, cfg.resolver)
  if not made then
    close_files(cfg)
    err:write("mxroute: cannot create a resolver: ", error_text(r), "\n")
    return nil, M.EX_TEMPFAIL
  end
  return r
end

-- The printer of results: done(i, input, ...) takes the result of input
-- number i (what r:resolve returns) and prints it, in input order unless
-- --unordered; state.printed counts the printed ones, state.worst is the
-- highest exit status so far. may_submit(i): whether input i may start
-- (nil: always), so that at most HOLD x --concurrency results wait.
local function printer(cfg, out, class)
  local state, outcomes = { printed = 0, worst = M.EX_OK }, {}
  local function print_one(o)
    state.printed = state.printed + 1
    if cfg.json then
      out:write(M.format_json(o), "\n")
    else
      if state.printed > 1 then out:write("\n") end
      out:write(M.format_text(o, class))
    end
    if cfg.unordered and out.flush then out:flush() end
  end
  local function done(i, input, ...)
    local o = M.outcome(input, class, ...)
    local st = M.status(o)
    if st > state.worst then state.worst = st end
    if cfg.unordered then return print_one(o) end
    outcomes[i] = o
    -- print in input order, as soon as every earlier input is printed
    while outcomes[state.printed + 1] do
      local next_o = outcomes[state.printed + 1]
      outcomes[state.printed + 1] = nil
      print_one(next_o)
    end
  end
  local may_submit
  if not cfg.unordered then
    local hold = M.HOLD * cfg.concurrency
    may_submit = function(i) return i - state.printed <= hold end
  end
  return done, may_submit, state
end

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
  local bad = cfg.routes_file and load_routes(cfg, mxroute, err)
  if bad then return bad end
  local core = require "mxroute.core"
  local r, status = make_resolver(cfg, mxroute, core, err)
  if not r then return status end
  local done, may_submit, state = printer(cfg, out, mxroute.class)
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
    flush()
    err:write("mxroute: ", e, ": pending inputs cancelled\n")
    return M.EX_TEMPFAIL
  end
  if state.printed ~= n_in then
    err:write("mxroute: internal error: ", n_in - state.printed,
              " input(s) left without a result\n")
    return M.EX_SOFTWARE
  end
  return state.worst
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
