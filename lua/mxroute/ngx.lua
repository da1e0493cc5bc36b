--- mxroute.ngx: mxroute inside OpenResty / nginx, on cosockets.
--
-- nginx workers must never block and ngx_lua cannot wait on a foreign file
-- descriptor, so this transport does its own I/O with `ngx.socket.udp` and
-- `ngx.socket.tcp` and drives the same sans-I/O resolution state machine
-- as the c-ares engine (`mxroute.core`: `core.res`, `q:next`,
-- `q:answer`, `q:fail`). Packets are built, checked (DESIGN rule 14) and
-- planned in C; this file reads only what a transport must: the 2-octet
-- ID, the TC bit and the rcode (to move on to the next nameserver after
-- SERVFAIL, NOTIMP or REFUSED), and compares the echoed question bytes.
--
--     local mxngx = require "mxroute.ngx"
--     local r = mxngx.resolver { nameservers = { "127.0.0.1:53" } }
--     local plan, message, code = r:resolve("user@example.com")
--     r:close()
--
-- How the I/O is arranged:
--
-- * A UDP cosocket cannot send while a light thread is blocked reading it
--   (ngx_lua answers "socket busy"), so queries are sent in bursts: every
--   query a resolution wants at one moment (A and AAAA of every MX host
--   right after the MX answer) is sent at once on one idle UDP socket of
--   the nameserver, then one reader light thread receives on that socket
--   and dispatches each reply by query ID to the resolution waiting for it
--   (an `ngx.semaphore` per resolution). The reader ends as soon as every
--   query of its burst is answered or timed out, and the socket goes back
--   to the pool for the next burst, of any light thread of the same
--   request handler. IDs are unique among the queries in flight on a
--   socket and come from the OS (`resty.random` when installed, else
--   /dev/urandom read in blocks).
-- * A reply is taken when its ID is one in flight on that socket and the
--   question it echoes is the one asked (octet comparison, ASCII case
--   folded); anything else is dropped and the wait goes on. A reply too
--   short to hold the question but carrying a known ID is handed to the C
--   checks, which classify it (FORMERR).
-- * A truncated answer (TC) is asked again over TCP (2-octet length
--   framing) in its own light thread.
-- * `timeout` is per try; a query is tried `tries` rounds over the
--   nameserver list, moving to the next nameserver after each timeout,
--   network error, SERVFAIL, NOTIMP or REFUSED (like c-ares, without its
--   doubling of the timeout per round).
--
-- Cosockets live within the Lua handler that creates them, so the sockets
-- of a resolver are kept per request handler (per `ngx.ctx` and phase): a
-- resolver is cheap to create per request, and one created at module level
-- or in init_by_lua may also be shared by requests. Many light threads of
-- one request may use one resolver at once.
local core = require "mxroute.core"

if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then -- luacheck: ignore 113
  error("mxroute.ngx runs inside OpenResty / nginx (ngx_lua); use mxroute elsewhere", 2)
end

local ngx = ngx -- luacheck: ignore 113
local semaphore = require "ngx.semaphore"

local M = {
  version = core.version,
  codes = core.codes, -- code -> class
}

local type, error, pairs, ipairs, tostring, pcall =
  type, error, pairs, ipairs, tostring, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local byte, char, sub, lower = string.byte, string.char, string.sub, string.lower
local floor, ceil = math.floor, math.ceil
local udp_socket, tcp_socket = ngx.socket.udp, ngx.socket.tcp
local spawn, kill = ngx.thread.spawn, ngx.thread.kill
local now, get_phase = ngx.now, ngx.get_phase

-- Phases in which cosockets, light threads and semaphores work.
local IO_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
  preread = true,
}

-- Extra seconds a resolution waits for an event beyond the per-try
-- timeout before it treats its overdue queries as lost.
local GUARD = 1

-- Rcodes after which another nameserver is asked (SERVFAIL, NOTIMP,
-- REFUSED).
local NEXT_SERVER_RCODES = { [2] = true, [4] = true, [5] = true }

local options = require "mxroute.options"

local need_opt = options.need

---------------------------------------------------------------------------
-- Query IDs from the OS

local POOL_BYTES = 1024
local pool, pool_pos, pool_pid = "", 1, nil
local strong_bytes
do
  local ok, random = pcall(require, "resty.random")
  if ok and type(random) == "table" and type(random.bytes) == "function" then
    strong_bytes = function(n) return random.bytes(n, true) end
  end
end

local function refill()
  local bytes = strong_bytes and strong_bytes(POOL_BYTES)
  if type(bytes) ~= "string" or #bytes < POOL_BYTES then
    local f = io.open("/dev/urandom", "rb")
    bytes = f and f:read(POOL_BYTES)
    if f then f:close() end
  end
  if type(bytes) ~= "string" or #bytes < 2 then
    error("mxroute.ngx: no randomness for query IDs (/dev/urandom unreadable)", 0)
  end
  pool, pool_pos, pool_pid = bytes, 1, ngx.worker.pid()
end

-- A random 16-bit ID and its two octets. The pool is refilled in each
-- worker process, never shared across a fork.
local function random_id()
  if pool_pos + 1 > #pool or pool_pid ~= ngx.worker.pid() then refill() end
  local hi, lo = byte(pool, pool_pos, pool_pos + 1)
  pool_pos = pool_pos + 2
  return hi * 256 + lo, hi, lo
end

-- An ID not in flight in `pending` (keyed by ID).
local function fresh_id(pending)
  while true do
    local id, hi, lo = random_id()
    if not pending[id] then return id, hi, lo end
  end
end

---------------------------------------------------------------------------
-- Options

local function check_fields(opts, where)
  if type(opts) == "table" and opts.wait ~= nil then
    return nil, where .. ": option 'wait' does not apply: mxroute.ngx always waits on cosockets"
  end
  return options.fields(opts, where, options.PLAN_FIELDS, options.RESOLVER_FIELDS)
end

local nameserver = options.nameserver

--- mxroute.ngx.parse_resolv_conf(text) -> list of "IP:PORT" strings: the
-- `nameserver` lines of a resolv.conf(5) text, at most three (like the C
-- library), scoped IPv6 addresses (`fe80::1%eth0`) left out; when there
-- is none, the local server "127.0.0.1:53".
function M.parse_resolv_conf(text)
  if type(text) ~= "string" then
    error("mxroute.ngx.parse_resolv_conf: text must be a string", 2)
  end
  local list = {}
  for line in text:gmatch("[^\n]+") do
    local addr = line:match("^%s*nameserver%s+([^%s#;]+)")
    local ns = addr and not addr:find("%", 1, true) and nameserver(addr)
    if ns and #list < 3 then list[#list + 1] = ns.name end
  end
  if #list == 0 then list[1] = "127.0.0.1:53" end
  return list
end

--- mxroute.ngx.read_resolv_conf([path]) -> list of "IP:PORT" | nil,
-- message, code: parse_resolv_conf of the file (default
-- /etc/resolv.conf), never read blocking: anything but a regular file (a
-- FIFO, a device) is refused with a message saying what it is. A
-- missing file gives the local server, like the C library.
function M.read_resolv_conf(path)
  if path == nil then path = "/etc/resolv.conf" end
  if type(path) ~= "string" then
    error("mxroute.ngx.read_resolv_conf: path must be a string", 2)
  end
  local text, message, code = core.read_regular_file(path)
  if not text then
    if code ~= "ENOENT" then return nil, message, code end
    text = ""
  end
  return M.parse_resolv_conf(text)
end

-- The nameservers of /etc/resolv.conf, read once per process on first
-- use (never per request); nil, message if it cannot be read.
local default_nameservers
local function system_nameservers(where)
  if not default_nameservers then
    local list, message = M.read_resolv_conf()
    if not list then return nil, where .. ": " .. message end
    default_nameservers = list
  end
  return default_nameservers
end

---------------------------------------------------------------------------
-- The resolver

local Resolver = {}
Resolver.__index = Resolver

local WEAK_KEYS = { __mode = "k" }

-- DESIGN 8: each worker keeps one C cache per cache setting and list of
-- nameservers (servers may answer differently), shared by every resolver
-- made with them: a resolver made per request still finds what earlier
-- requests asked. Cosockets live within a request; cached RRsets are
-- plain C memory and outlive it.
local worker_caches = {}
local function worker_cache(cfg, ns)
  if not cfg then return nil end
  local names = {}
  for i, n in ipairs(ns) do names[i] = n.name end
  local key = ("%s/%s/%s/%s/%s"):format(cfg.size or "", cfg.min_ttl or "",
    cfg.max_ttl or "", cfg.stale or "", table.concat(names, ","))
  local c = worker_caches[key]
  if not c then
    c = core.cache(cfg)
    worker_caches[key] = c
  end
  return c
end

--- mxroute.ngx.resolver(opts) -> resolver. The options of
-- `mxroute.resolver` (DESIGN 3) but `wait`: nameservers (default: the
-- `nameserver` lines of /etc/resolv.conf, read once per worker), timeout
-- (seconds per try, default 2), tries (default 3), routes (README,
-- "Routing policies") and the planner fields. A bad field raises an error
-- naming it. Creating a resolver does no I/O.
function M.resolver(opts)
  local where = "mxroute.ngx.resolver"
  opts = need_opt(check_fields(opts, where))
  local ns_opt = opts.nameservers
  if ns_opt == nil then ns_opt = need_opt(system_nameservers(where)) end
  local ns = need_opt(options.nameservers(ns_opt, where))
  local timeout, tries = 2, 3
  if opts.timeout ~= nil then
    timeout = math.max(0.001, need_opt(options.timeout(opts.timeout, where)))
  end
  if opts.tries ~= nil then tries = need_opt(options.tries(opts.tries, where)) end
  local cache = need_opt(options.cache(opts.cache, where))
  local o = need_opt(options.planner(opts, where))
  local rt -- DESIGN 7: routes, as mxroute.resolver has them
  if opts.routes ~= nil then rt = need_opt(options.routes(opts.routes, where)) end
  return setmetatable({
    _routes = rt,
    _opts = o, _ns = ns, _timeout = timeout, _tries = tries,
    _cache = worker_cache(cache, ns), -- DESIGN 8: one per worker and settings
    _attempts = tries * #ns, -- tries rounds over the nameserver list
    _jobs = {},              -- resolutions in progress
    _pools = setmetatable({}, WEAK_KEYS), -- ngx.ctx -> phase -> socket pool
    _closed = false,
  }, Resolver)
end

local function check(self, where)
  if getmetatable(self) ~= Resolver then
    error("mxroute.ngx: " .. where .. ": expected a resolver", 4)
  end
  if self._closed then error("mxroute.ngx: " .. where .. ": resolver is closed", 4) end
end

-- The current phase, or an error naming it when cosockets do not work
-- there (level: where the caller's caller is).
local function io_phase(where, level)
  local phase = get_phase()
  if not IO_PHASES[phase] then
    error(("mxroute.ngx: %s: cosockets are not available in the '%s' phase; "
      .. "resolve from rewrite, access, content, ssl_certificate or timer "
      .. "handlers (e.g. ngx.timer.at(0, ...))"):format(where, phase), level)
  end
  return phase
end

-- The socket pool of the current request handler.
local function current_pool(self, phase)
  local ok, ctx = pcall(function() return ngx.ctx end)
  local key = ok and type(ctx) == "table" and ctx or self
  local by_phase = self._pools[key]
  if not by_phase then
    by_phase = {}
    self._pools[key] = by_phase
  end
  local p = by_phase[phase]
  if not p then
    p = { idle = {}, busy = {}, closed = false }
    by_phase[phase] = p
  end
  return p
end

---------------------------------------------------------------------------
-- Wire helpers (only what a transport must read)

-- Length of the question section of query `pkt` as the C code builds it:
-- after the 12-octet header, one uncompressed name, type and class.
local function question_length(pkt)
  local i = 13
  while true do
    local n = byte(pkt, i)
    if not n then return #pkt - 12 end
    if n == 0 then return i - 12 + 4 end
    i = i + 1 + n
  end
end

-- Does `data` echo the question `qsec` (lower case): QDCOUNT 1 and the
-- same octets? Like c-ares, a reply to another question is not ours. A
-- reply too short to hold the question is left to the C checks.
local function same_question(data, qsec)
  local n = #qsec
  if #data < 12 + n then return true end
  local hi, lo = byte(data, 5, 6)
  return hi == 0 and lo == 1 and lower(sub(data, 13, 12 + n)) == qsec
end

local function truncated(data)
  local flags = byte(data, 3)
  return flags ~= nil and floor(flags / 2) % 2 == 1
end

local function rcode(data)
  local b = byte(data, 4)
  return b and b % 16
end

---------------------------------------------------------------------------
-- Events: what the I/O threads tell the waiting resolution

-- Queue an outcome for query state `st` (attempt `attempt`) and wake the
-- resolution.
local function deliver(st, attempt, kind, data)
  local job = st.job
  if job.closed then return end
  local events = job.events
  events[#events + 1] = { st = st, attempt = attempt, kind = kind, data = data }
  job.sema:post(1)
end

---------------------------------------------------------------------------
-- UDP: sockets, bursts, readers

-- Back to the idle list once its burst is over (or closed if broken).
local function release(s)
  local p = s.pool
  p.busy[s] = nil
  if s.broken or p.closed then
    s.sock:close()
    return
  end
  local idle = p.idle[s.server]
  idle[#idle + 1] = s
end

local function acquire(self, p, server)
  local idle = p.idle[server]
  if not idle then
    idle = {}
    p.idle[server] = idle
  end
  local s = idle[#idle]
  if s then
    idle[#idle] = nil
  else
    local ns = self._ns[server]
    local sock = udp_socket()
    local ok, err = sock:setpeername(ns.host, ns.port)
    if not ok then return nil, err end
    s = { sock = sock, server = server, pool = p, pending = {}, count = 0 }
  end
  p.busy[s] = true
  return s
end

-- The one light thread reading socket `s` while its burst is in flight:
-- replies go to their resolutions by ID; at the deadline the rest time
-- out; then the socket is released.
local function reader(s)
  local sock, pending = s.sock, s.pending
  while s.count > 0 do
    local left = s.deadline - now()
    local data, err
    if left > 0 then
      sock:settimeout(ceil(left * 1000))
      data, err = sock:receive()
    else
      err = "timeout"
    end
    if data then
      local id = #data >= 2 and byte(data, 1) * 256 + byte(data, 2)
      local e = id and pending[id]
      if e and same_question(data, e.st.qsec) then
        pending[id] = nil
        s.count = s.count - 1
        deliver(e.st, e.attempt, "udp", data)
      end
    else
      local kind = err == "timeout" and "timeout" or "network"
      if kind == "network" then s.broken = true end
      for id, e in pairs(pending) do
        pending[id] = nil
        deliver(e.st, e.attempt, kind, err)
      end
      s.count = 0
    end
  end
  s.reader = nil
  release(s)
end

-- Send every query state of `list` to nameserver `server` on one socket
-- now, then start its reader.
local function send_burst(self, job, server, list)
  local deadline = now() + self._timeout
  local s, err = acquire(self, job.pool, server)
  for _, st in ipairs(list) do
    st.deadline, st.server = deadline, server
  end
  if not s then
    for _, st in ipairs(list) do deliver(st, st.attempt, "network", err) end
    return
  end
  local pending, sock = s.pending, s.sock
  for _, st in ipairs(list) do
    local id, hi, lo = fresh_id(pending)
    local ok, serr = sock:send(char(hi, lo) .. st.body)
    if ok then
      pending[id] = { st = st, attempt = st.attempt }
      s.count = s.count + 1
    else
      s.broken = true
      deliver(st, st.attempt, "network", serr)
    end
  end
  if s.count > 0 then
    s.deadline = deadline
    s.reader = spawn(reader, s)
    job.bursts[#job.bursts + 1] = s
  else
    release(s)
  end
end

---------------------------------------------------------------------------
-- TCP, after a truncated UDP answer

-- One exchange over TCP with nameserver `ns` within `deadline`: the reply
-- to `st` (same ID and question), or nil and an error ("timeout", ...).
local function tcp_exchange(ns, st, deadline)
  local sock = tcp_socket()
  -- arm the socket for what is left of the try
  local function arm()
    local left = deadline - now()
    if left <= 0 then return false end
    sock:settimeout(ceil(left * 1000))
    return true
  end
  local function fail(err)
    sock:close()
    return nil, err
  end
  arm()
  local ok, err = sock:connect(ns.host, ns.port)
  if not ok then return fail(err) end
  local _, hi, lo = random_id()
  local msg = char(hi, lo) .. st.body
  if not arm() then return fail("timeout") end
  ok, err = sock:send(char(floor(#msg / 256), #msg % 256) .. msg)
  if not ok then return fail(err) end
  while true do
    if not arm() then return fail("timeout") end
    local head, herr = sock:receive(2)
    if not head then return fail(herr) end
    local len, data = byte(head, 1) * 256 + byte(head, 2), ""
    if len > 0 then
      if not arm() then return fail("timeout") end
      local derr
      data, derr = sock:receive(len)
      if not data then return fail(derr) end
    end
    -- RFC 7766 7: replies are matched by ID (and here also question)
    if #data >= 2 and byte(data, 1) == hi and byte(data, 2) == lo
        and same_question(data, st.qsec) then
      sock:close()
      return data
    end
  end
end

-- The light thread asking again over TCP after a truncated answer; `t`
-- records that it is over.
local function tcp_query(self, st, attempt, server, t)
  local deadline = now() + self._timeout
  st.deadline = deadline
  local data, err = tcp_exchange(self._ns[server], st, deadline)
  t.done = true
  if data then return deliver(st, attempt, "tcp", data) end
  deliver(st, attempt, err == "timeout" and "timeout" or "network", err)
end

---------------------------------------------------------------------------
-- Driving one resolution

local function server_of(self, attempt)
  return (attempt - 1) % #self._ns + 1
end

-- Send what the state machine asks now, plus due retries, one burst per
-- nameserver.
local function flush(self, job)
  local q, bursts = job.q, {}
  local function add(st)
    local server = server_of(self, st.attempt)
    local list = bursts[server]
    if not list then
      list = {}
      bursts[server] = list
    end
    list[#list + 1] = st
  end
  local retry = job.retry
  if retry[1] then
    job.retry = {}
    for _, st in ipairs(retry) do add(st) end
  end
  while true do
    local slot, name, qtype = q:next()
    if not slot then break end
    local pkt, _, code = core.packet(name, qtype, 0)
    if not pkt then
      q:fail(slot, code or "FORMERR")
    else
      local st = {
        slot = slot, job = job, attempt = 1, body = sub(pkt, 3),
        qsec = lower(sub(pkt, 13, 12 + question_length(pkt))),
      }
      job.slots[slot] = st
      add(st)
    end
  end
  for server, list in pairs(bursts) do send_burst(self, job, server, list) end
end

local function settle(job, st)
  st.settled = true
  job.slots[st.slot] = nil
end

local function retry_later(job, st)
  st.attempt = st.attempt + 1
  local retry = job.retry
  retry[#retry + 1] = st
end

-- Act on one I/O outcome: feed the state machine, retry, or go to TCP.
local function handle(self, job, ev)
  local st, q = ev.st, job.q
  if st.settled or ev.attempt ~= st.attempt then return end -- stale
  local more = st.attempt < self._attempts
  if ev.kind == "udp" or ev.kind == "tcp" then
    local data = ev.data
    if ev.kind == "udp" and truncated(data) then
      local t = { done = false }
      t.thread = spawn(tcp_query, self, st, st.attempt, st.server, t)
      job.tcp[#job.tcp + 1] = t
      return
    end
    if more and #self._ns > 1 and NEXT_SERVER_RCODES[rcode(data)] then
      st.fallback = data
      return retry_later(job, st)
    end
    settle(job, st)
    return q:answer(st.slot, data)
  end
  if more then return retry_later(job, st) end
  settle(job, st)
  if st.fallback then return q:answer(st.slot, st.fallback) end
  return q:fail(st.slot, ev.kind == "timeout" and "TIMEOUT" or "NETWORK")
end

-- Overdue queries whose outcome never came (a reader killed from
-- outside): treat them as timed out.
local function expire_overdue(job)
  local t, any = now(), false
  for _, st in pairs(job.slots) do
    any = true
    if st.deadline and t >= st.deadline then
      deliver(st, st.attempt, "timeout", "lost")
    end
  end
  if not any and not job.retry[1] then
    error("mxroute.ngx: internal error: resolution waits with nothing in flight", 0)
  end
end

-- One round: send, wait for at least one outcome, act on every outcome
-- that has come.
local function pump(self, job)
  local q = job.q
  flush(self, job)
  while not job.events[1] do
    if q:done() then return end
    local ok, err = job.sema:wait(self._timeout + GUARD)
    if q:done() then return end
    if not ok and not job.events[1] then
      if err ~= "timeout" then
        error("mxroute.ngx: waiting failed: " .. tostring(err), 0)
      end
      expire_overdue(job)
    end
  end
  local events = job.events
  job.events = {}
  for _, ev in ipairs(events) do
    if q:done() then return end
    handle(self, job, ev)
  end
end

-- The resolution is over (done, cancelled or failed): stop the I/O
-- threads it left (only the light thread that started them can), so that
-- nothing outlives it and delays the end of the request. Idempotent; a
-- call from another light thread leaves the threads to the next call
-- from the one that started them.
local function finish(self, job)
  self._jobs[job] = nil
  job.closed = true
  for _, t in ipairs(job.tcp) do
    if not t.done and t.thread and kill(t.thread) then t.done = true end
  end
  for _, s in ipairs(job.bursts) do
    if s.reader and kill(s.reader) then
      s.reader = nil
      s.broken = true
      s.pool.busy[s] = nil
      s.sock:close()
    end
  end
end

-- A resolution of `input` on this resolver, ready to be driven; call:
-- the options routing rules see (mxroute.routes builds the resolution).
local function start(self, input, where, call)
  check(self, where)
  local phase = io_phase(where, 4)
  if type(input) ~= "string" then
    error("mxroute.ngx: " .. where .. ": input must be a string", 3)
  end
  local c, why = options.call(call, "mxroute.ngx: " .. where)
  if not c then error(why, 3) end
  local job = {
    q = require("mxroute.routes").res(input, self._opts, self._routes, c, self._cache),
    events = {}, slots = {}, retry = {},
    bursts = {}, -- UDP sockets it sent on (their readers)
    tcp = {},    -- its TCP light threads
  }
  if not job.q:done() then
    job.sema = semaphore.new(0)
    job.pool = current_pool(self, phase)
    self._jobs[job] = true
  end
  return job
end

-- Drive until done; on an error, cancel and re-raise.
local function drive(self, job)
  local q = job.q
  local ok, err = pcall(function()
    while not q:done() do pump(self, job) end
  end)
  finish(self, job)
  if not ok then
    if not q:done() then q:cancel() end
    error(err, 0)
  end
end

--- r:resolve(input) -> plan | nil, message, code, info. The results of
-- `mxroute` (DESIGN 2); waits on cosockets, suspending only the calling
-- light thread.
function Resolver:resolve(input, call)
  local job = start(self, input, "resolve", call)
  drive(self, job)
  return job.q:result()
end

local Targets = {}
Targets.__index = Targets

--- st:close() cancels the rest of a targets() iteration.
function Targets:close()
  if not self.finished then
    self.finished = true
    self.closed = true
    self.query:cancel()
    finish(self._resolver, self._job)
  end
end
Targets.__close = Targets.close

--- r:targets(input) -> iterator, state, nil, state. Yields targets in
-- delivery order as soon as their preference level is final. The same
-- contract as mxroute's: on failure the loop ends, state.message,
-- state.code and state.info tell why and the last call returns nil,
-- message, code; on success state.plan holds the plan; state.closed once
-- closed early. Call state:close() when leaving the loop early (LuaJIT
-- has no to-be-closed variables).
function Resolver:targets(input, call)
  local job = start(self, input, "targets", call)
  local q = job.q
  local st = setmetatable({ query = q, n = 0, finished = false,
                            _resolver = self, _job = job }, Targets)
  local function iter(s)
    if s.finished then return nil end
    local i = s.n + 1
    while true do
      if q:ready() >= i then
        s.n = i
        return q:target(i)
      end
      if q:done() then
        s.finished = true
        finish(self, job)
        local plan, msg, code, info = q:result()
        s.plan = plan
        if not plan then
          s.message, s.code, s.info = msg, code, info
          return nil, msg, code
        end
        return nil
      end
      local ok, err = pcall(pump, self, job)
      if not ok then
        s.finished = true
        finish(self, job)
        if not q:done() then q:cancel() end
        error(err, 0)
      end
    end
  end
  return iter, st, nil, st
end

--- r:close() cancels every resolution in progress (CANCELLED): each one
-- stops its reader and TCP light threads (from the light thread that
-- drives it), and the idle sockets of the current request handler are
-- closed. nginx closes every cosocket at the end of its handler anyway.
-- Idempotent.
function Resolver:close()
  if getmetatable(self) ~= Resolver then error("mxroute.ngx: close: expected a resolver", 2) end
  if self._closed then return end
  self._closed = true
  local jobs = {}
  for job in pairs(self._jobs) do jobs[#jobs + 1] = job end
  for _, job in ipairs(jobs) do
    job.q:cancel()
    finish(self, job)
    job.sema:post(1) -- wake its waiting light thread
  end
  for _, by_phase in pairs(self._pools) do
    for _, p in pairs(by_phase) do p.closed = true end
  end
  local phase = get_phase()
  if not IO_PHASES[phase] then return end
  local p = current_pool(self, phase)
  for _, idle in pairs(p.idle) do
    for i = #idle, 1, -1 do
      idle[i].sock:close()
      idle[i] = nil
    end
  end
end
Resolver.__close = Resolver.close

--- r:cache_stats() -> the counters of this worker's cache (as
-- mxroute.resolver's; all 0 with `cache = false`).
function Resolver:cache_stats()
  check(self, "cache_stats")
  if self._cache then return self._cache:stats() end
  return { hits = 0, misses = 0, entries = 0, evictions = 0, stale = 0,
           inserts = 0, merged = 0 }
end

--- r:flush([name]) -> n: drops cached RRsets of name, or all, from this
-- worker's cache.
function Resolver:flush(name)
  check(self, "flush")
  if name ~= nil and type(name) ~= "string" then
    error("mxroute.ngx: flush: name must be a string", 2)
  end
  if not self._cache then return 0 end
  local ok, n = pcall(self._cache.flush, self._cache, name)
  if not ok then error(n, 2) end
  return n
end

--- r:nameservers() -> list of "IP:PORT" in the order they are asked.
function Resolver:nameservers()
  local out = {}
  for i, ns in ipairs(self._ns) do out[i] = ns.name end
  return out
end

--- mxroute.ngx.new(opts) -> resolver | nil, message, "BADOPT": the
-- OpenResty-style constructor (as `resty.dns.resolver:new`): the same
-- options as `mxroute.ngx.resolver`, but a bad one is returned as an
-- error instead of raised.
--
--     local r, err = mxngx.new { nameservers = { "127.0.0.1" } }
--     if not r then ngx.log(ngx.ERR, err) return ngx.exit(500) end
function M.new(opts)
  local ok, r = pcall(M.resolver, opts)
  if ok then return r end
  return nil, (tostring(r):gsub("^[^:\n]*:%d+: ", "")), "BADOPT"
end

--- mxroute.ngx.class(code) -> "permanent" | "temporary" | "loop" | "invalid".
function M.class(code)
  return (need_opt(options.class(code, "mxroute.ngx.class"))) -- not a tail call: the level counts
end

return M
