--- faultd: a scriptable DNS responder for the test suite.
--
--   lua5.4 spec/support/faultd.lua --rules RULES.lua --log LOG.jsonl
--          --ready READYFILE [--port N] [--pidfile F] [--max-seconds S]
--          [--parent PID]
--
-- Listens on 127.0.0.1, one port, UDP and TCP.  Each name in RULES.lua
-- says how to answer: real data, or one of many faults (rcodes, delays,
-- silence, truncation, short or malformed packets, wrong IDs, …).  Every
-- query received and every reply sent is logged as one JSON line.  The
-- rules format is documented in spec/support/README.md ("Fault server").
-- Runs under Lua 5.4 and LuaJIT (Lua 5.1 semantics) with luv.
local uv = require "luv"

local script_dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
local wire = dofile(script_dir .. "/dnswire.lua")

local format, concat, floor = string.format, table.concat, math.floor

local function die(msg)
  io.stderr:write("faultd: ", msg, "\n")
  os.exit(2)
end

---------------------------------------------------------------------------
-- Command line

local opts = { port = 0, max_seconds = 600 }
do
  local i = 1
  local names = {
    ["--rules"] = "rules", ["--log"] = "log", ["--ready"] = "ready",
    ["--port"] = "port", ["--pidfile"] = "pidfile",
    ["--max-seconds"] = "max_seconds", ["--parent"] = "parent",
  }
  while arg[i] do
    local key = names[arg[i]]
    if not key or arg[i + 1] == nil then die("bad argument '" .. arg[i] .. "'") end
    opts[key] = arg[i + 1]
    i = i + 2
  end
  for _, k in ipairs { "rules", "log", "ready" } do
    if not opts[k] then die("missing --" .. k) end
  end
  opts.port = tonumber(opts.port) or die("bad --port")
  opts.max_seconds = tonumber(opts.max_seconds) or die("bad --max-seconds")
  if opts.parent then opts.parent = tonumber(opts.parent) or die("bad --parent") end
end

---------------------------------------------------------------------------
-- Rules

-- Keys holding record data: answered whenever the reply is NOERROR.
local DATA = { MX = true, A = true, AAAA = true, CNAME = true, TXT = true,
               NS = true, PTR = true, ttl = true }
-- Fault keys: what `fail_first` switches off after N queries.
local FAULT = {
  rcode = "rcode", drop = "boolean", close = "boolean", delay = "number",
  tc = "boolean", short = "short", malformed = "malformed",
  wrong_id = "boolean", then_ok = "then_ok", qr0 = "boolean",
  question = "question", qtype = "type", qclass = "number", owner = "string",
  raw = "function", opcode = "number", aa = "boolean",
  keep_answers = "boolean", udp_limit = "udp_limit",
}
local MALFORMED = { truncated = true, count = true, loop = true, rdlength = true }
local DEFAULTS = {
  nxdomain = { rcode = "NXDOMAIN" }, refused = { rcode = "REFUSED" },
  servfail = { rcode = "SERVFAIL" }, formerr = { rcode = "FORMERR" },
  notimp = { rcode = "NOTIMP" }, nodata = { rcode = "NOERROR" },
  noerror = { rcode = "NOERROR" }, drop = { drop = true }, close = { close = true },
}

local function check_value(kind, v)
  if kind == "boolean" then return type(v) == "boolean" end
  if kind == "number" then return type(v) == "number" end
  if kind == "string" then return type(v) == "string" end
  if kind == "function" then return type(v) == "function" end
  if kind == "rcode" then
    local c = wire.rcode_code(v)
    return c ~= nil and c >= 0 and c <= 15 and c == floor(c)
  end
  if kind == "short" then
    return v == true or type(v) == "number" and v >= 0 and v < 12
  end
  if kind == "malformed" then return v == true or MALFORMED[v] == true end
  if kind == "then_ok" then return type(v) == "boolean" or type(v) == "number" end
  if kind == "question" then return v == false or type(v) == "string" end
  if kind == "type" then return wire.type_code(v) ~= nil end
  if kind == "udp_limit" then return v == false or type(v) == "number" end
  return false
end

local function check_data(k, v, where)
  local ok
  if k == "ttl" then ok = type(v) == "number"
  elseif k == "CNAME" then ok = type(v) == "string"
  elseif k == "MX" then
    ok = type(v) == "table"
    for _, mx in ipairs(ok and v or {}) do
      if type(mx) ~= "table" or type(mx[1]) ~= "number" or type(mx[2]) ~= "string" then
        ok = false
      end
    end
  else
    ok = type(v) == "string" or type(v) == "table"
  end
  if not ok then die(where .. ": bad value for " .. k) end
  -- encode once now so that a bad address fails at startup
  local list = type(v) == "table" and v or { v }
  if k == "A" or k == "AAAA" then
    for _, a in ipairs(list) do
      local good = pcall(wire.rdata[k], a)
      if not good then die(where .. ": bad " .. k .. " address " .. tostring(a)) end
    end
  end
end

-- Validate one behaviour table; `level` is "name", "type" or "proto".
local function check_behaviour(b, where, level)
  if type(b) ~= "table" then die(where .. ": not a table") end
  for k, v in pairs(b) do
    if DATA[k] then
      check_data(k, v, where)
    elseif FAULT[k] then
      if not check_value(FAULT[k], v) then die(where .. ": bad value for " .. k) end
    elseif k == "fail_first" then
      if type(v) ~= "number" or v < 0 then die(where .. ": bad value for fail_first") end
    elseif (k == "udp" or k == "tcp") and level ~= "proto" then
      check_behaviour(v, where .. "." .. k, "proto")
    elseif k == "types" and level == "name" then
      if type(v) ~= "table" then die(where .. ".types: not a table") end
      local norm = {}
      for t, sub in pairs(v) do
        local code = wire.type_code(t)
        if not code then die(where .. ".types: unknown type " .. tostring(t)) end
        check_behaviour(sub, where .. ".types." .. tostring(t), "type")
        norm[code] = sub
      end
      b.types = norm
    else
      die(where .. ": unknown key '" .. tostring(k) .. "'")
    end
  end
end

local rules = { names = {}, default = {} }
do
  local chunk, err = loadfile(opts.rules)
  if not chunk then die("cannot load rules: " .. err) end
  local ok, t = pcall(chunk, wire)
  if not ok then die("rules failed: " .. tostring(t)) end
  if type(t) ~= "table" then die("rules file must return a table") end
  for k, v in pairs(t) do
    if k == "default" then
      if type(v) == "string" then
        rules.default = DEFAULTS[v:lower()] or die("unknown default '" .. v .. "'")
      else
        check_behaviour(v, "default", "name")
        rules.default = v
      end
    elseif type(k) ~= "string" then
      die("rule keys must be names")
    else
      check_behaviour(v, k, "name")
      local key = wire.canon(k)
      if rules.names[key] then die("name listed twice: " .. k) end
      rules.names[key] = v
    end
  end
end

---------------------------------------------------------------------------
-- Log

local t0 = uv.hrtime()
local logf = io.open(opts.log, "a") or die("cannot open log " .. opts.log)

local function json_string(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_value(v)
  local t = type(v)
  if t == "string" then return json_string(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
    return format("%.6f", v)
  end
  return "null"
end

-- Write one event from key, value, key, value… (nil values left out).
local function log_event(...)
  local parts = { format('"t":%.6f', (uv.hrtime() - t0) / 1e9) }
  local fields = { ... }
  for i = 1, select("#", ...), 2 do
    if fields[i + 1] ~= nil then
      parts[#parts + 1] = json_string(fields[i]) .. ":" .. json_value(fields[i + 1])
    end
  end
  logf:write("{", concat(parts, ","), "}\n")
  logf:flush()
end

---------------------------------------------------------------------------
-- Building replies

local function as_list(v)
  if type(v) == "table" then return v end
  return { v }
end

-- Encoded records of type `tname` that `entry` holds for `owner`.
local function data_records(entry, tname, owner, ttl)
  local out = {}
  local v = entry[tname]
  if v == nil then return out end
  if tname == "MX" then
    for _, mx in ipairs(v) do
      out[#out + 1] = wire.rr(owner, "MX", ttl, wire.rdata.MX(mx[1], mx[2]))
    end
  elseif tname == "TXT" then
    -- a string is one record; a list holds records, each a string or a
    -- list of strings
    if type(v) == "string" then v = { v } end
    for _, txt in ipairs(v) do
      out[#out + 1] = wire.rr(owner, "TXT", ttl, wire.rdata.TXT(txt))
    end
  else
    for _, item in ipairs(as_list(v)) do
      out[#out + 1] = wire.rr(owner, tname, ttl, wire.rdata[tname](item))
    end
  end
  return out
end

-- The answer section for (qname, qtype): the CNAME chain as far as the
-- rules know it (a loop ends it), then the records of the asked type.
local function answer_records(entry, qname, qtype, owner_override)
  local out = {}
  local tname = wire.type_name(qtype)
  local seen = {}
  local name, e = qname, entry
  while e and not seen[wire.canon(name)] do
    seen[wire.canon(name)] = true
    local ttl = e.ttl or 300
    local owner = owner_override or name
    if e.CNAME and qtype ~= 5 then
      out[#out + 1] = wire.rr(owner, "CNAME", ttl, wire.rdata.CNAME(e.CNAME))
      name = e.CNAME
      e = rules.names[wire.canon(name)]
    else
      if DATA[tname] then
        for _, r in ipairs(data_records(e, tname, owner, ttl)) do out[#out + 1] = r end
      end
      break
    end
  end
  return out
end

-- UDP payload size the client can take: 512, or its EDNS size capped at
-- 1232 like Knot and NSD do.
local function udp_limit(b, edns_size)
  if b.udp_limit ~= nil then return b.udp_limit end
  if not edns_size then return 512 end
  return math.max(512, math.min(edns_size, 1232))
end

-- Break a reply made of header, question and records (see `malformed`).
local function malform(kind, h, question, records)
  if kind == true then kind = "truncated" end
  local head = h
  if kind == "truncated" then
    local first = records[1]
    if first then
      head.ancount = #records
      return wire.header(head) .. question .. first:sub(1, #first - 2)
    end
    head.ancount = 1
    return wire.header(head) .. question .. "\3abc\0\0"
  elseif kind == "count" then
    head.ancount = #records + 1
    return wire.header(head) .. question .. concat(records)
  elseif kind == "loop" then
    -- an answer whose owner is a compression pointer to itself
    head.ancount = 1
    local base = wire.header(head) .. question
    local ptr = #base -- 0-based offset of the pointer
    return base .. string.char(192 + floor(ptr / 256), ptr % 256)
        .. wire.u16(1) .. wire.u16(1) .. wire.u32(300) .. wire.u16(4) .. "\192\0\2\1"
  else -- rdlength: the first record claims more rdata than the packet holds
    local rr = records[1] or wire.rr("x", "A", 300, "\192\0\2\1")
    head.ancount = math.max(#records, 1)
    local _, after = wire.decode_name(rr, 1)
    local rdlen = wire.get_u16(rr, after + 8)
    local bad = rr:sub(1, after + 7) .. wire.u16(rdlen + 200) .. rr:sub(after + 10)
    return wire.header(head) .. question .. bad .. concat(records, "", 2)
  end
end

-- The normal (or rcode/tc/malformed/short/wrong-question) reply.
-- Returns bytes and a list of extra action words.
local function build_reply(ctx, b)
  local words = {}
  local rcode = b.rcode ~= nil and wire.rcode_code(b.rcode) or (ctx.exists and 0 or 3)
  local records = {}
  if rcode == 0 or b.keep_answers then
    records = answer_records(ctx.entry_data, ctx.name, ctx.qtype, b.owner)
  end
  local question, qdcount = "", 0
  if b.question ~= false then
    question = wire.question(b.question or ctx.name, b.qtype or ctx.qtype, b.qclass or ctx.qclass)
    qdcount = 1
  end
  local h = {
    id = ctx.id, qr = true, opcode = b.opcode or ctx.opcode, aa = b.aa ~= false,
    rd = ctx.rd, rcode = rcode, qdcount = qdcount, ancount = #records,
  }
  if ctx.proto == "udp" and b.tc then
    h.tc, h.ancount, records = true, 0, {}
    words[#words + 1] = "tc"
  end
  local msg
  if b.malformed then
    msg = malform(b.malformed, h, question, records)
  else
    msg = wire.header(h) .. question .. concat(records)
    local limit = ctx.proto == "udp" and udp_limit(b, ctx.edns)
    if limit and #msg > limit then
      h.tc, h.ancount = true, 0
      msg = wire.header(h) .. question
      words[#words + 1] = "tc(size)"
    end
  end
  if b.short then
    msg = msg:sub(1, b.short == true and 5 or b.short)
  end
  return msg, words, rcode
end

---------------------------------------------------------------------------
-- Query handling

local count_name, count_type = {}, {}

-- Merge name-level, type-level and protocol-level behaviour for a query.
local function effective(entry, qtype, proto)
  local b = {}
  local function overlay(t)
    if not t then return end
    for k, v in pairs(t) do
      if k ~= "types" and k ~= "udp" and k ~= "tcp" then b[k] = v end
    end
  end
  overlay(entry)
  overlay(entry[proto])
  local sub = entry.types and entry.types[qtype]
  local per_type = sub and sub.fail_first ~= nil
  overlay(sub)
  overlay(sub and sub[proto])
  return b, per_type
end

-- `fn` wrapped so that an error is logged instead of ending the server
-- (luv exits the process on an error in a callback).
local function guarded(fn)
  return function(...)
    local ok, err = pcall(fn, ...)
    if not ok then log_event("event", "error", "error", tostring(err)) end
  end
end

-- Run `fn` now (no delay) or once at least `ms` milliseconds have passed.
-- libuv timers run on a coarse clock that can fire a few ms early, so the
-- elapsed time is checked against hrtime and the timer re-armed if short.
local function later(ms, fn)
  if not ms or ms <= 0 then return fn() end
  fn = guarded(fn)
  local due = uv.hrtime() + ms * 1e6
  local t = uv.new_timer()
  local function tick()
    local left = (due - uv.hrtime()) / 1e6
    if left > 0 then return t:start(math.ceil(left), 0, tick) end
    t:close()
    fn()
  end
  t:start(math.ceil(ms), 0, tick)
end

-- The action words of a behaviour, for the log.
local function action_of(b, words)
  local out = {}
  for _, k in ipairs { "drop", "close", "raw", "qr0", "rcode", "wrong_id", "then_ok",
                       "malformed", "short", "question", "qtype", "qclass",
                       "owner", "opcode" } do
    if b[k] ~= nil and b[k] ~= false then out[#out + 1] = k end
  end
  for _, w in ipairs(words or {}) do out[#out + 1] = w end
  if b.delay and b.delay > 0 then out[#out + 1] = "delay" end
  if #out == 0 then out[1] = "answer" end
  return concat(out, "+")
end

-- Handle one query message.  `chan` has proto, send(bytes) -> ok, close().
local function handle(msg, chan)
  local h = wire.parse_header(msg)
  if not h or h.qr then
    log_event("proto", chan.proto, "id", h and h.id, "bytes", #msg, "action", "ignored")
    return
  end
  local name, after
  if h.qdcount >= 1 then name, after = wire.decode_name(msg, 13) end
  local qtype = name and wire.get_u16(msg, after)
  local qclass = name and wire.get_u16(msg, after + 2)
  if not (qtype and qclass) then
    log_event("proto", chan.proto, "id", h.id, "bytes", #msg, "action", "formerr")
    local reply = wire.header { id = h.id, qr = true, opcode = h.opcode, rd = h.rd, rcode = 1 }
    log_event("event", "reply", "proto", chan.proto, "id", h.id, "bytes", #reply)
    chan.send(reply)
    return
  end
  -- EDNS: find an OPT record in the additional section (only its size is used)
  local edns
  local parsed = wire.parse(msg)
  if parsed then
    for _, rr in ipairs(parsed.additional) do
      if rr.type == 41 then edns = math.max(rr.class, 512) end
    end
  end

  local key = wire.canon(name)
  local entry = rules.names[key]
  local exists = entry ~= nil
  entry = entry or rules.default
  local tkey = key .. "/" .. qtype
  count_name[key] = (count_name[key] or 0) + 1
  count_type[tkey] = (count_type[tkey] or 0) + 1
  local b, per_type = effective(entry, qtype, chan.proto)
  local n = count_name[key]
  if b.fail_first and (per_type and count_type[tkey] or n) > b.fail_first then
    for k in pairs(FAULT) do b[k] = nil end
  end

  local ctx = {
    proto = chan.proto, id = h.id, opcode = h.opcode, rd = h.rd, name = name,
    qtype = qtype, qclass = qclass, exists = exists, edns = edns,
    entry_data = entry,
  }
  local tname = wire.type_name(qtype)
  local sends = {} -- { at = delay ms, bytes = s, what = log action | close = true }
  local words, rcode, raw_error = {}, nil, nil
  if b.drop then
    sends = {} -- never answer
  elseif b.close then
    if chan.proto == "tcp" then sends[1] = { at = b.delay, close = true } end
  elseif b.raw then
    local ok, res = pcall(b.raw, msg, h.id, { proto = chan.proto, name = name, type = tname, n = n })
    if not ok then
      raw_error = tostring(res)
      words[#words + 1] = "error"
    elseif type(res) == "string" then
      sends[1] = { at = b.delay, bytes = res }
    elseif type(res) == "table" then
      for i, s in ipairs(res) do sends[i] = { at = b.delay, bytes = s } end
    end
  elseif b.qr0 then
    sends[1] = { at = b.delay, bytes = msg }
  else
    local reply
    reply, words, rcode = build_reply(ctx, b)
    if b.wrong_id then
      local bad = wire.u16(wire.xor16(h.id, 0x5555)) .. reply:sub(3)
      sends[1] = { at = b.delay, bytes = bad, what = "wrong_id" }
      if b.then_ok then
        local gap = b.then_ok == true and 50 or b.then_ok
        sends[2] = { at = (b.delay or 0) + gap, bytes = reply, what = "then_ok" }
      end
    else
      sends[1] = { at = b.delay, bytes = reply }
    end
  end
  local action = action_of(b, words)
  log_event(
    "proto", chan.proto, "id", h.id, "name", name, "type", tname, "action", action,
    "n", n, "edns", edns ~= nil, "rcode", rcode, "delay", b.delay, "error", raw_error,
    "sport", chan.sport
  )
  for _, s in ipairs(sends) do
    later(s.at, function()
      if s.close then
        chan.close()
        log_event("event", "close", "proto", chan.proto, "id", h.id, "name", name, "type", tname)
        return
      end
      -- logged just before sending, so that a client holding the reply
      -- always finds its line in the log
      local rid = #s.bytes >= 2 and wire.get_u16(s.bytes, 1) or nil
      log_event(
        "event", "reply", "proto", chan.proto, "id", rid,
        "name", name, "type", tname, "bytes", #s.bytes, "action", s.what or action
      )
      if not chan.send(s.bytes) then
        log_event("event", "unsent", "proto", chan.proto, "id", rid, "name", name, "type", tname)
      end
    end)
  end
end

---------------------------------------------------------------------------
-- Sockets

local udp, tcp

local function on_udp(err, data, addr)
  if err or not data or not addr then return end
  handle(data, {
    proto = "udp", sport = addr.port,
    send = function(bytes)
      local ok = udp:try_send(bytes, addr.ip, addr.port)
      if not ok then ok = udp:send(bytes, addr.ip, addr.port, function() end) end
      return ok ~= nil
    end,
  })
end

-- One TCP client: 2-octet length framing (RFC 1035 4.2.2), any number of
-- queries per connection, messages split across reads.
local function on_connection(err)
  if err then return end
  local c = uv.new_tcp()
  if not tcp:accept(c) then c:close(); return end
  local conn = { buf = "", closed = false }
  local function close()
    if conn.closed then return end
    conn.closed = true
    if not c:is_closing() then c:close() end
  end
  local chan = {
    proto = "tcp",
    send = function(bytes)
      if conn.closed then return false end
      return c:write(wire.u16(#bytes) .. bytes) ~= nil
    end,
    close = close,
  }
  c:read_start(guarded(function(rerr, chunk)
    if rerr or not chunk then return close() end
    conn.buf = conn.buf .. chunk
    while #conn.buf >= 2 do
      local len = wire.get_u16(conn.buf, 1)
      if #conn.buf < 2 + len then break end
      local msg = conn.buf:sub(3, 2 + len)
      conn.buf = conn.buf:sub(3 + len)
      handle(msg, chan)
      if conn.closed then return end
    end
  end))
end

-- Bind UDP (port 0: any free port), then TCP on the same port number.
local function bind_both(port)
  local u = uv.new_udp()
  local ok, err = u:bind("127.0.0.1", port)
  if not ok then u:close(); return nil, err end
  local actual = u:getsockname().port
  -- a burst of a thousand queries must not overflow the default receive
  -- buffer (the kernel caps this at net.core.rmem_max)
  if u.recv_buffer_size then pcall(u.recv_buffer_size, u, 4 * 1024 * 1024) end
  if u.send_buffer_size then pcall(u.send_buffer_size, u, 4 * 1024 * 1024) end
  local t = uv.new_tcp()
  ok, err = t:bind("127.0.0.1", actual)
  if ok then ok, err = t:listen(64, guarded(on_connection)) end
  if not ok then
    u:close(); t:close()
    return nil, err
  end
  return u, t, actual
end

local function shutdown()
  uv.walk(function(handle_)
    if not handle_:is_closing() then handle_:close() end
  end)
end

do
  local port, err
  for _ = 1, (opts.port == 0 and 50 or 1) do
    udp, tcp, port = bind_both(opts.port)
    if udp then break end
    err = tcp
  end
  if not udp then die("cannot bind 127.0.0.1:" .. opts.port .. ": " .. tostring(err)) end
  udp:recv_start(guarded(on_udp))

  for _, name in ipairs { "sigterm", "sigint" } do
    local s = uv.new_signal()
    s:start(name, shutdown)
  end
  local limit = uv.new_timer()
  limit:start(floor(opts.max_seconds * 1000), 0, shutdown)
  if opts.parent then
    local watch = uv.new_timer()
    watch:start(200, 200, function()
      if uv.os_getppid() ~= opts.parent then shutdown() end
    end)
  end

  if opts.pidfile then
    local f = io.open(opts.pidfile, "w") or die("cannot write " .. opts.pidfile)
    f:write(uv.os_getpid(), "\n")
    f:close()
  end
  local tmp = opts.ready .. ".tmp"
  local f = io.open(tmp, "w") or die("cannot write " .. tmp)
  f:write(port, "\n")
  f:close()
  os.rename(tmp, opts.ready)
end

uv.run()
logf:close()
if opts.pidfile then os.remove(opts.pidfile) end
os.exit(0)
