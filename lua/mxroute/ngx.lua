--- mxroute.ngx: mxroute inside OpenResty / nginx, on cosockets.
--
-- nginx workers must never block and ngx_lua cannot wait on a foreign file
-- descriptor, so this transport moves the bytes of the sans-I/O exchange
-- (`core.xch`: IDs, answer matching, retries, failover, server health,
-- TCP after TC, socket rotation, the in-flight bound — DESIGN 9) with
-- `ngx.socket.udp`/`tcp`. It opens, sends, reads and closes what the
-- exchange asks and tells it what came back; it reads no DNS message.
--
--     local mxngx = require "mxroute.ngx"
--     local r = mxngx.resolver { nameservers = { "127.0.0.1:53" } }
--     local plan, message, code = r:resolve("user@example.com")
--     r:close()
--
-- How the I/O is arranged (cosockets live within the Lua handler that
-- made them; two light threads may not read one cosocket; a UDP cosocket
-- cannot send or close while a thread reads it: "socket busy"):
--
-- * A resolver keeps one session per request handler (per `ngx.ctx` and
--   phase): one exchange and the cosockets it asked for. So a resolver is
--   cheap to create per request, and one made at module level or in
--   init_by_lua is shared by requests, each handler with its own.
-- * The light threads waiting in resolve/targets drive: they run every
--   pending `io()` operation, `tick()` when `timeout()` is due, and hand
--   finished queries to their threads (an `ngx.semaphore` each); then
--   they sleep on their semaphore until the exchange's next deadline.
-- * Each cosocket has one reader light thread while replies are expected
--   on it. A reader hands bytes to `recv` (errors to `sock_error`),
--   wakes the threads of finished queries and, when the exchange has I/O
--   to do, one waiting thread to drive it; but when its cosocket awaits
--   nothing more, it drives itself: what goes to its own exchange socket
--   is sent on its cosocket, which it goes on reading, and the readers of
--   other cosockets it sent on are started by a waiting thread. It ends
--   when every query sent on its cosocket was taken, or after a try's
--   timeout.
-- * One UDP socket of the exchange is carried by one or more cosockets
--   connected to its server: what the exchange sends on it in one round
--   goes out as a burst on an idle cosocket (a new one, with a port of its
--   own, while the others are read), whose reader starts after the burst;
--   closing the socket closes them all. TCP cosockets are full duplex;
--   stream bytes go to `recv` as they come (the exchange reassembles).
-- * Only the thread that spawned a light thread may kill it: a thread
--   leaving a session with nothing pending (its last resolution, or
--   `r:close()`) kills the readers it spawned, so that none delays the
--   end of the request; those of threads that left earlier end alone.
local core = require "mxroute.core"
local routes_res = require("mxroute.routes").res

if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then -- luacheck: ignore 113
  error("mxroute.ngx runs inside OpenResty / nginx (ngx_lua); use mxroute elsewhere", 2)
end

local ngx = ngx -- luacheck: ignore 113
local semaphore = require "ngx.semaphore"
local options = require "mxroute.options"
local iterate = require("mxroute.targets").iterate

local M = {
  version = core.version,
  codes = core.codes, -- code -> class
}

local type, error, pairs, ipairs, next, tostring, pcall =
  type, error, pairs, ipairs, next, tostring, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local byte = string.byte
local ceil, max = math.ceil, math.max
local udp_socket, tcp_socket = ngx.socket.udp, ngx.socket.tcp
local spawn, kill = ngx.thread.spawn, ngx.thread.kill
local running = coroutine.running
local now, update_time, get_phase = ngx.now, ngx.update_time, ngx.get_phase
local need_opt = options.need

-- Phases in which cosockets, light threads and semaphores work.
local IO_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
  preread = true,
}

-- Seconds a waiting thread sleeps when the exchange has no deadline (a
-- safety net: a pending query has one).
local IDLE_WAIT = 1

---------------------------------------------------------------------------
-- Options (checked by mxroute.options, as mxroute.resolver's)

-- The C engine's defaults (csrc/loptions.c, core.options), which the
-- exchange made here is given explicitly.
local DEFAULT_TIMEOUT = tonumber(options.FIELDS.timeout.default)
local DEFAULT_TRIES = tonumber(options.FIELDS.tries.default)

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
-- Sessions: one exchange and its cosockets per request handler

-- Drop the cosocket record c: close it (only its own request may) and
-- forget it.
local function drop(c)
  c.ch.all[c] = nil
  if c.sock then
    c.sock:close()
    c.sock = nil
  end
end

-- Post the semaphore of waiter w if its thread waits on it (a thread
-- elsewhere, e.g. a targets loop between two targets, finds w.done or
-- the new targets when it comes back; no count is left behind).
local function post(w)
  if w.waiting then
    w.waiting = false
    w.sema:post(1)
  end
end

-- Wake targets iterators with new targets.
local function wake_targets(s)
  for w, q in pairs(s.targets) do
    if not w.done and q:ready() > w.seen then
      w.seen = q:ready()
      post(w)
    end
  end
end

-- Post one waiting thread of session s (to drive).
local function wake_driver(s)
  for _, w in pairs(s.waiters) do
    if w.waiting and not w.done then
      post(w)
      return
    end
  end
end

-- Mark the finished queries of session s and wake their threads;
-- whether one was woken.
local function dispatch(s)
  local x, woke = s.xch, false
  while true do
    local q = x:next_done()
    if not q then return woke end
    local class = q:class() -- r:stats().plans
    s.plans[class] = s.plans[class] + 1
    local w = s.waiters[q]
    if w and not w.done then
      w.done = true
      if w.waiting then woke = true end
      post(w)
    end
  end
end

-- After bytes came in: wake the threads of finished queries, targets
-- iterators with new targets, and, when the exchange has something to
-- do now (due: x:timeout() is 0, as x:recv tells), one waiting thread to
-- drive it, unless a woken thread of a finished query will (a woken
-- thread drives before it returns).
local function wake(s, due)
  if due == nil then
    local t = s.xch:timeout()
    due = t and t <= 0
  end
  if not due then
    if next(s.targets) then wake_targets(s) end
    return
  end
  if not dispatch(s) then wake_driver(s) end
  if next(s.targets) then wake_targets(s) end
end

-- A cosocket failed: the exchange moves on (next server, next try).
local function x_error(s, ch, err)
  if not ch.closed and not s.closed then
    s.xch:sock_error(ch.n, err == "timeout" and "TIMEOUT" or "NETWORK")
  end
end

-- One read on cosocket record c: a datagram, or one DNS message over
-- TCP (connecting first and sending what waited for the connection),
-- whose 2-octet length goes to the exchange first.
local function read_once(s, c, sock)
  if not c.ch.tcp then return sock:receive() end
  if not c.connected then
    local ns = s.ns[c.ch.server]
    local ok, err = sock:connect(ns.host, ns.port)
    if not ok then return nil, err end
    c.connected = true
    for _, data in ipairs(c.out) do
      ok, err = sock:send(data)
      if not ok then return nil, err end
    end
    c.out = nil
  end
  local head, err = sock:receive(2)
  if not head then return nil, err end
  if c.closed or s.closed then return nil, "closed" end
  s.xch:recv(c.ch.n, head) -- no message yet
  local len = byte(head, 1) * 256 + byte(head, 2)
  if len == 0 then return "" end
  return sock:receive(len)
end

local drive -- below: one driving round

-- Reader light thread of cosocket record c: hands what arrives to the
-- exchange until every query sent on c is taken or c.deadline passes.
-- A reply that leaves nothing awaited on c while the exchange has
-- something to do: the reader drives it at once, and what goes to c's
-- exchange socket is sent on c, which it goes on reading (no thread to
-- wake, no reader to start; c would have gone idle).
local function reader(s, c)
  local ch, x, sock = c.ch, s.xch, c.sock
  while c.outstanding > 0 and not (c.closed or s.closed) do
    -- the cached time (nginx's, of this event loop cycle) unless it
    -- says the deadline passed
    local left = c.deadline - now()
    if left <= 0 then
      update_time()
      left = c.deadline - now()
      if left <= 0 then break end
    end
    sock:settimeout(ceil(left * 1000))
    local data, err = read_once(s, c, sock)
    if c.closed or s.closed then break end
    if data then
      if data ~= "" then
        local taken, due = x:recv(ch.n, data)
        if taken then c.outstanding = c.outstanding - 1 end
        if due and c.outstanding == 0 and not ch.tcp and s.socks[ch.n] == ch then
          drive(s, c)
          if next(s.targets) then wake_targets(s) end
        else
          wake(s, due)
        end
      end
    elseif err ~= "timeout" or (ch.tcp and not c.connected) then
      c.broken = true
      x_error(s, ch, err)
      wake(s)
      break
    end
  end
  c.reader, c.outstanding = nil, 0
  s.readers[c] = nil
  if c.closed or c.broken or ch.closed or s.closed then
    drop(c)
  elseif not ch.tcp then
    local idle = ch.idle
    idle[#idle + 1] = c
  end
end

-- Start the reader of cosocket record c. One that ends before its first
-- yield (the reply was already there) leaves c.reader nil.
local SPAWNING = {}
local function start_reader(s, c)
  if c.reader or not c.sock then return end
  s.readers[c] = true
  c.owner, c.reader = running(), SPAWNING
  local th = spawn(reader, s, c)
  if c.reader == SPAWNING then c.reader = th end
end

-- The exchange's operations. 'started': records whose reader starts
-- after this round (a UDP cosocket being read cannot send); 'own': the
-- record of the reader driving, if one is.
local OPS = {}

function OPS.udp(s, n, server)
  s.socks[n] = { n = n, server = server, idle = {}, all = {} }
end

function OPS.tcp(s, n, server)
  local ch = { n = n, server = server, tcp = true, all = {} }
  s.socks[n] = ch
  local c = { ch = ch, sock = tcp_socket(), outstanding = 0, out = {} }
  ch.all[c], ch.c = true, c
end

-- The time the sends of a driving round count their deadlines from: the
-- cached time brought up to date once per round.
local function send_time(s)
  local t = s.sent_at
  if not t then
    update_time()
    t = now()
    s.sent_at = t
  end
  return t
end

function OPS.send(s, n, _, data, started, own)
  local ch = s.socks[n]
  if not ch then return end
  local deadline = send_time(s) + s.wait
  if ch.tcp then -- its reader connects first
    local c = ch.c
    if not c.sock then return end
    c.outstanding, c.deadline = c.outstanding + 1, deadline
    started[#started + 1] = c
    if not c.connected then
      c.out[#c.out + 1] = data
      return
    end
    local ok, err = c.sock:send(data)
    if not ok then
      c.broken = true
      return x_error(s, ch, err)
    end
    return
  end
  local c = ch.burst
  if not c then
    if own and own.ch == ch and not own.broken then
      c = own -- its reader is the thread driving
    else
      c = ch.unstarted -- sent on by a reader, not read yet
      if c and c.broken then c = nil end
      if not c then
        local idle = ch.idle
        c = idle[#idle]
        if c then
          idle[#idle] = nil
        else
          local ns = s.ns[ch.server]
          local sock = udp_socket()
          local ok, err = sock:setpeername(ns.host, ns.port)
          if not ok then return x_error(s, ch, err) end
          c = { ch = ch, sock = sock, outstanding = 0 }
          ch.all[c] = true
        end
        started[#started + 1] = c
      end
    end
    ch.burst = c
  end
  local ok, err = c.sock:send(data)
  if not ok then
    c.broken = true
    return x_error(s, ch, err)
  end
  c.outstanding = c.outstanding + 1
  c.deadline = deadline
end

function OPS.close(s, n)
  local ch = s.socks[n]
  if not ch then return end
  s.socks[n] = nil
  ch.closed = true
  local me = running()
  for c in pairs(ch.all) do
    c.closed = true
    if not c.reader then
      drop(c)
    elseif c.owner == me and kill(c.reader) then
      c.reader = nil
      s.readers[c] = nil
      drop(c)
    end
  end
end

-- One driving round: due deadlines, every pending I/O operation, readers
-- of the cosockets just sent on, finished queries.
-- Start the readers of the records in list (drop those that failed). A
-- reader driving (own) may not: only the thread that spawns a light
-- thread may kill it, and a reader's thread may end first; it leaves
-- them to a waiting thread (s.unstarted), whose cosockets may be sent on
-- meanwhile.
local function start_readers(s, list, own)
  for i = 1, #list do
    local c = list[i]
    local ch = c.ch
    if ch.burst == c then ch.burst = nil end
    if c.broken or s.closed or c.reader then
      if ch.unstarted == c then ch.unstarted = nil end
      if c.broken and not c.reader then drop(c) end
    elseif own then
      if not c.unstarted then
        c.unstarted, ch.unstarted = true, c
        local u = s.unstarted
        u[#u + 1] = c
      end
    else
      if ch.unstarted == c then ch.unstarted = nil end
      c.unstarted = nil
      start_reader(s, c)
    end
  end
end

-- One driving round: due deadlines, every pending I/O operation, readers
-- of the cosockets just sent on (and of those a reader sent on),
-- finished queries. own: the record of the reader driving, if one is.
function drive(s, own)
  if s.closed then return end
  local x = s.xch
  local t = x:timeout()
  if t and t <= 0 then x:tick() end
  local started = {}
  s.sent_at = nil
  while not s.closed do
    local op, n, server, data = x:io()
    if not op then break end
    OPS[op](s, n, server, data, started, own)
  end
  if own and own.ch.burst == own then own.ch.burst = nil end
  start_readers(s, started, own)
  local u = s.unstarted
  if not own and #u > 0 then
    s.unstarted = {}
    start_readers(s, u)
  end
  if s.closed then return end
  if not dispatch(s) and own and #s.unstarted > 0 then wake_driver(s) end
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
-- With `shared_dict`, the cache has a second level in that
-- lua_shared_dict: a local miss asks it, every answer stored is offered
-- to it, so the workers share RRsets (csrc/cache.c).
local worker_caches = {}
local function worker_cache(cfg, ns, dict)
  if not cfg then return nil end
  local names = {}
  for i, n in ipairs(ns) do names[i] = n.name end
  local key = ("%s/%s/%s/%s/%s/%s"):format(cfg.size or "", cfg.min_ttl or "",
    cfg.max_ttl or "", cfg.stale or "", table.concat(names, ","), dict or "")
  local c = worker_caches[key]
  if not c then
    c = core.cache(cfg)
    if dict then c:shared(ngx.shared[dict]) end
    worker_caches[key] = c
  end
  return c
end

-- shared_dict (DESIGN 8, this module's own option): the name of a
-- lua_shared_dict -> the name | nil, message. set: the settings checked
-- before it (the cache).
local function shared_dict(v, where, _, set)
  local pre = where .. ": option 'shared_dict': "
  if type(v) ~= "string" then
    return nil, pre .. "expected the name of a lua_shared_dict"
  end
  if not set.cache then return nil, pre .. "needs the cache (cache = false)" end
  if not ngx.shared[v] then
    return nil, pre .. "no lua_shared_dict named '" .. v .. "' in nginx.conf"
  end
  return v
end
local OWN_CHECKS = { shared_dict = shared_dict }

-- The resolver of opts, or nil, message, field: the bad option, named
-- as data (mxroute.ngx.new returns it).
local function make(opts, where)
  -- the options of every resolver, checked as mxroute.resolver's
  local set, why, field = options.resolver(opts, where, "ngx", OWN_CHECKS)
  if not set then return nil, why, field end
  local ns = set.nameservers
  if ns == nil then -- the default: resolv.conf's
    ns, why = system_nameservers(where)
    if ns then ns, why = options.nameservers(ns, where) end
    if not ns then return nil, why, "nameservers" end
  end
  local cache, dict, o, rt = set.cache, set.shared_dict or false, set.planner, set.routes
  local names = {}
  for i, v in ipairs(ns) do names[i] = v.name end
  local xcfg = { servers = names, timeout = math.max(0.001, set.timeout or DEFAULT_TIMEOUT),
                 tries = set.tries or DEFAULT_TRIES }
  for k, v in pairs(set.exchange) do xcfg[k] = v end
  -- the exchange's own checks (unroutable nameservers) at creation; each
  -- request handler makes its exchange when it first resolves (never one
  -- made here: a resolver of init_by_lua is copied into every worker)
  local ok, x = pcall(core.xch, xcfg)
  if not ok then
    return nil, where .. ": option 'nameservers': "
      .. tostring(x):gsub("^mxroute%.xch: servers%[%d+%]: ", ""), "nameservers"
  end
  x:close()
  return setmetatable({
    _opts = o, _ns = ns, _xcfg = xcfg, _routes = rt,
    _on_query = set.on_query, -- called from the waiting threads' step
    _cache = worker_cache(cache, ns, dict), -- DESIGN 8: one per worker and settings
    _sessions = setmetatable({}, WEAK_KEYS), -- ngx.ctx -> phase -> session
    _closed = false,
  }, Resolver)
end

--- mxroute.ngx.resolver(opts) -> resolver. The options of
-- `mxroute.resolver` (DESIGN 3) but `wait`: nameservers (default: the
-- `nameserver` lines of /etc/resolv.conf, read once per worker), timeout
-- (seconds per try, default 2), tries (default 3), the exchange's
-- max_inflight, udp_queries, health and dns0x20, routes (README, "Routing
-- policies"), cache (README, "Cache") and the planner fields; and
-- shared_dict, the name of a lua_shared_dict through which the workers'
-- caches share RRsets (README, "OpenResty"). A bad field raises an error
-- naming it. Creating a resolver does no I/O.
function M.resolver(opts)
  local r, why = make(opts, "mxroute.ngx.resolver")
  if not r then error(why, 2) end
  return r
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

-- What identifies the current request handler (with the phase).
local function get_ctx() return ngx.ctx end
local function handler(self)
  local ok, ctx = pcall(get_ctx)
  return ok and type(ctx) == "table" and ctx or self
end

-- The session of the current request handler (made on first use).
local function session(self, phase)
  local key = handler(self)
  local by_phase = self._sessions[key]
  if not by_phase then
    by_phase = {}
    self._sessions[key] = by_phase
  end
  local s = by_phase[phase]
  if not s then
    s = {
      xch = core.xch(self._xcfg), ns = self._ns, wait = self._xcfg.timeout,
      socks = {},   -- exchange socket number -> channel
      readers = {}, -- cosocket records being read
      unstarted = {}, -- records a reader sent on, for a waiting thread to read
      waiters = {}, -- query -> { sema, done, seen (targets) }
      semas = {},   -- semaphores of waiters that left
      targets = {}, -- waiter of a targets iteration -> its query
      closed = false, on_query = self._on_query,
      plans = { ok = 0, permanent = 0, temporary = 0, loop = 0, invalid = 0 },
    }
    by_phase[phase] = s
  end
  return s
end

-- Close session s: its queries end CANCELLED, their threads wake, the
-- cosockets of the current handler that nobody reads are closed.
local function close_session(s, mine)
  if s.closed then return end
  s.closed = true
  for _, w in pairs(s.waiters) do
    w.done = true
    post(w)
  end
  s.xch:close()
  if mine then
    for _, ch in pairs(s.socks) do
      ch.closed = true
      for c in pairs(ch.all) do
        if not c.reader then drop(c) end
      end
    end
  end
end

-- The thread of waiter w leaves session s (its query q done, removed or
-- failed). With nothing left pending, it stops the readers it spawned.
local function leave(s, q, w)
  s.waiters[q], s.targets[w] = nil, nil
  if w.sema and not w.waiting then -- for the session's next waiter
    local semas = s.semas
    semas[#semas + 1] = w.sema
    w.sema = nil
  end
  if not s.closed then
    if not w.done then s.xch:remove(q) end -- else next_done detached it
    if s.xch:pending() > 0 then return end
  end
  local me = running()
  for c in pairs(s.readers) do
    if c.owner == me and c.reader and kill(c.reader) then
      c.reader = nil
      s.readers[c] = nil
      c.closed = true
      drop(c)
    end
  end
end

-- A resolution of `input` on this resolver: the query, and when it needs
-- I/O its session and waiter; call: the options routing rules see
-- (mxroute.routes builds the resolution).
local function start(self, input, where, targets, call)
  check(self, where)
  local phase = io_phase(where, 4)
  if type(input) ~= "string" then
    error("mxroute.ngx: " .. where .. ": input must be a string", 3)
  end
  local c, why = options.call(call, "mxroute.ngx: " .. where)
  if not c then error(why, 3) end
  local q = routes_res(input, self._opts, self._routes, c, self._cache)
  local s = session(self, phase)
  if q:done() then -- no query needed: counted here (r:stats().plans)
    local class = q:class()
    s.plans[class] = s.plans[class] + 1
    return q
  end
  local semas = s.semas
  local sema = semas[#semas]
  if sema then semas[#semas] = nil else sema = semaphore.new(0) end
  local w = { sema = sema, done = false }
  if targets then
    w.seen = 0
    s.targets[w] = q
  end
  s.waiters[q] = w
  s.xch:add(q)
  return q, s, w
end

-- One round for waiter w: drive, sleep until woken or the next
-- deadline, and drive again: a thread woken to drive (by a reader, for
-- another query) drives before its own loop may return to its caller.
local function step(s, w)
  drive(s)
  if not w.done then
    local t = s.xch:timeout()
    w.waiting = true
    local ok, err = w.sema:wait(t and max(t, 0.001) or IDLE_WAIT)
    w.waiting = false
    if not ok and err ~= "timeout" then
      error("mxroute.ngx: waiting failed: " .. tostring(err), 0)
    end
    drive(s)
  end
  -- on_query runs here, in a waiting thread, never in a reader; an error
  -- leaves the other events for the next step
  local on_query = s.on_query
  while on_query and not s.closed do
    local ev = s.xch:next_event()
    if not ev then break end
    on_query(ev)
  end
end

--- r:resolve(input [, call]) -> plan | nil, message, code, info. The results of
-- `mxroute` (DESIGN 2); waits on cosockets, suspending only the calling
-- light thread.
local function steps(s, w)
  while not w.done do step(s, w) end
end

function Resolver:resolve(input, call)
  local q, s, w = start(self, input, "resolve", nil, call)
  if s then
    local ok, err = pcall(steps, s, w)
    leave(s, q, w)
    if not ok then error(err, 0) end
  end
  return q:result()
end

-- The targets() drivers (mxroute.targets): a query that needed no I/O
-- is over at once; else its waiter w steps session s.
local DONE = {}
function DONE.over() return true end
function DONE.leave(_, q, cancel) if cancel then q:cancel() end end

local Driver = {}
Driver.__index = Driver
function Driver:over() return self.w.done end
function Driver:wait(q)
  local w = self.w
  w.seen = q:ready()
  step(self.s, w)
end
function Driver:leave(q) leave(self.s, q, self.w) end

--- r:targets(input [, call]) -> iterator, state, nil, state. Yields targets in
-- delivery order as soon as their preference level is final. The same
-- contract as mxroute's: on failure the loop ends, state.message,
-- state.code and state.info tell why and the last call returns nil,
-- message, code; on success state.plan holds the plan; state.closed once
-- closed early. Call state:close() when leaving the loop early (LuaJIT
-- has no to-be-closed variables).
function Resolver:targets(input, call)
  local q, s, w = start(self, input, "targets", true, call)
  return iterate(q, s and setmetatable({ s = s, w = w }, Driver) or DONE)
end

--- r:close() cancels every resolution in progress (CANCELLED): their
-- threads wake and stop the reader threads they started; the cosockets
-- of the current request handler are closed. nginx closes every cosocket
-- at the end of its handler anyway. Idempotent.
function Resolver:close()
  if getmetatable(self) ~= Resolver then error("mxroute.ngx: close: expected a resolver", 2) end
  if self._closed then return end
  self._closed = true
  local phase, key = get_phase(), handler(self)
  for k, by_phase in pairs(self._sessions) do
    for p, s in pairs(by_phase) do
      close_session(s, k == key and p == phase and IO_PHASES[phase])
    end
  end
end
Resolver.__close = Resolver.close

--- r:cache_stats() -> the counters of this worker's cache (as
-- mxroute.resolver's; all 0 with `cache = false`), but merged: the
-- lookups that joined one in flight in the current request handler's
-- exchange (as r:stats().merged, cache on or off).
function Resolver:cache_stats()
  check(self, "cache_stats")
  local st = self._cache and self._cache:stats()
    or { hits = 0, misses = 0, entries = 0, evictions = 0, stale = 0, inserts = 0 }
  st.merged = self:stats().merged
  return st
end

--- r:flush([name]) -> n: drops cached RRsets of name, or all, from this
-- worker's cache (not from a `shared_dict`: its entries expire with
-- their TTL; ngx.shared.DICT:flush_all() drops them).
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

--- r:stats() -> the counters of the current request handler's exchange
-- (as mxroute's r:stats(): queries, answers, timeouts, tcp, merged,
-- dropped, sockets, server_failures, plans by class); all 0 before it
-- resolved. Its
-- `sockets` counts the exchange's UDP sockets: each may have been carried
-- by several cosockets.
function Resolver:stats()
  check(self, "stats")
  local by_phase = self._sessions[handler(self)]
  local s = by_phase and by_phase[get_phase()]
  -- none made here: in init_by_lua it would be copied into every worker
  local p = s and s.plans or {}
  local plans = { ok = p.ok or 0, permanent = p.permanent or 0,
                  temporary = p.temporary or 0, loop = p.loop or 0,
                  invalid = p.invalid or 0 }
  if s and not s.closed then
    local out = s.xch:stats()
    out.plans = plans
    return out
  end
  local out = { queries = 0, answers = 0, timeouts = 0, tcp = 0, merged = 0,
                dropped = 0, sockets = 0, server_failures = {}, plans = plans }
  for i = 1, #self._ns do out.server_failures[i] = 0 end
  return out
end

--- r:nameservers() -> list of "IP:PORT" in the order they are asked.
function Resolver:nameservers()
  local out = {}
  for i, ns in ipairs(self._ns) do out[i] = ns.name end
  return out
end

--- mxroute.ngx.new(opts) -> resolver | nil, message, "BADOPT", field:
-- the OpenResty-style constructor (as `resty.dns.resolver:new`): the
-- same options as `mxroute.ngx.resolver`, but a bad one is returned as an
-- error instead of raised, with the name of the bad field.
--
--     local r, err = mxngx.new { nameservers = { "127.0.0.1" } }
--     if not r then ngx.log(ngx.ERR, err) return ngx.exit(500) end
function M.new(opts)
  local ok, r, why, field = pcall(make, opts, "mxroute.ngx.resolver")
  if ok and r then return r end
  if not ok then why = tostring(r):gsub("^[^:\n]*:%d+: ", "") end
  return nil, why, "BADOPT", field
end

--- mxroute.ngx.class(code) -> "permanent" | "temporary" | "loop" | "invalid".
function M.class(code)
  return (need_opt(options.class(code, "mxroute.ngx.class"))) -- not a tail call: the level counts
end

return M
