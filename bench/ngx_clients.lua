--- bench/ngx_clients.lua — the clients bench/ngx_bench.lua runs inside
-- nginx (module "ngx_clients"; one request runs one client).
--
--   GET /run?client=mxroute|peer&server=IP:PORT&d=D&file=DOMAINFILE[&max_inflight=N]
--
-- D light threads (ngx.thread.spawn) of the request take the domains of
-- DOMAINFILE one after the other:
--
-- * "mxroute": r:resolve(domain) on one mxroute.ngx resolver (cache off,
--   timeout 2, tries 3); every plan checked against the zone bench/run
--   generates, as bench/bench.lua does (wrong=0);
-- * "peer": the cosocket analogue of bench/raw_cares.c: hand-built DNS
--   queries (EDNS 1232) on ngx.socket.udp, the MX query, then A and AAAA
--   of every exchange at once (sent on a cosocket each, then read), the
--   addresses picked out of the answers; no checks but the ID, a timeout
--   resends (3 tries).
--
-- The response is one line in the format of the other clients, with the
-- worker's CPU time per plan (os.clock: the worker is one process).
local mxngx = require "mxroute.ngx"

local ngx = ngx -- luacheck: ignore 113
local byte, char, sub = string.byte, string.char, string.sub
local concat = table.concat
local spawn, wait = ngx.thread.spawn, ngx.thread.wait
local udp = ngx.socket.udp
local band, rshift = bit.band, bit.rshift -- luacheck: ignore 113

local M = {}

local function read_domains(file)
  local out = {}
  for line in io.lines(file) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

-- The four targets of dN ("host addr" -> preference), as bench/bench.lua.
local function expected(domains)
  local expect = {}
  for _, d in ipairs(domains) do
    local i = tonumber(d:match("^d(%d+)%."))
    if i then
      local b, a = math.floor(i / 250) % 250 + 1, i % 250 + 1
      expect[d] = {
        [("mx1.d%d.bench.test 198.51.%d.%d"):format(i, b, a)] = 10,
        [("mx1.d%d.bench.test 2001:db8:%x::%x"):format(i, i, i)] = 10,
        [("mx2.d%d.bench.test 203.0.%d.%d"):format(i, b, a)] = 20,
        [("mx2.d%d.bench.test 2001:db8:%x::1:%x"):format(i, i, i)] = 20,
      }
    end
  end
  return expect
end

local function plan_ok(want, plan)
  if not want or #plan.targets ~= 4 then return false end
  local seen = {}
  for _, t in ipairs(plan.targets) do
    local k = t.host .. " " .. t.addr
    if want[k] ~= t.pref or seen[k] then return false end
    seen[k] = true
  end
  return true
end

---------------------------------------------------------------------------
-- The cosocket peer: the least a client does on cosockets

-- A query for name (no trailing dot) of type qtype, ID id, RD, EDNS 1232.
local function query(id, name, qtype)
  local parts = { char(rshift(id, 8), band(id, 255), 1, 0, 0, 1, 0, 0, 0, 0, 0, 1) }
  for label in name:gmatch("[^.]+") do
    parts[#parts + 1] = char(#label) .. label
  end
  parts[#parts + 1] = char(0, 0, qtype, 0, 1, 0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0)
  return concat(parts)
end

-- Offset after the name at offset i (1-based) of packet p.
local function skip_name(p, i)
  while true do
    local n = byte(p, i)
    if not n or n == 0 then return i + 1 end
    if n >= 192 then return i + 2 end
    i = i + n + 1
  end
end

-- The name at offset i of p, pointers followed (dotted, no trailing dot).
local function read_name(p, i)
  local labels = {}
  for _ = 1, 64 do
    local n = byte(p, i)
    if not n or n == 0 then break end
    if n >= 192 then
      i = (n - 192) * 256 + byte(p, i + 1) + 1
    else
      labels[#labels + 1] = sub(p, i + 1, i + n)
      i = i + n + 1
    end
  end
  return concat(labels, ".")
end

-- The records of type rtype in the answer section of p: for MX, the
-- exchange names appended to out; for A and AAAA, the addresses (their
-- RDATA). Returns out.
local function answers(p, rtype, out)
  local an = byte(p, 7) * 256 + byte(p, 8)
  local i = skip_name(p, 13) + 4
  for _ = 1, an do
    i = skip_name(p, i)
    local t, len = byte(p, i + 1), byte(p, i + 8) * 256 + byte(p, i + 9)
    if not len then break end
    if t == rtype and byte(p, i) == 0 then
      out[#out + 1] = rtype == 15 and read_name(p, i + 12) or sub(p, i + 10, i + 9 + len)
    end
    i = i + 10 + len
  end
  return out
end

-- Send q on sock and read its reply (same ID), resending after a timeout.
local function ask(sock, q)
  for _ = 1, 3 do
    sock:send(q)
    while true do
      local p, err = sock:receive()
      if not p then
        if err == "timeout" then break end
        return nil
      end
      if byte(p, 1) == byte(q, 1) and byte(p, 2) == byte(q, 2) then return p end
    end
  end
  return nil
end

-- The reply to q, already sent on sock: read, resent after a timeout.
local function reply(sock, q)
  while true do
    local r, err = sock:receive()
    if not r then
      if err ~= "timeout" then return nil end
      return ask(sock, q) -- two more tries
    end
    if byte(r, 1) == byte(q, 1) and byte(r, 2) == byte(q, 2) then return r end
  end
end

local function peer_thread(job)
  local host, port = job.host, job.port
  local socks = {}
  local function sock(k)
    local s = socks[k]
    if not s then
      s = udp()
      s:settimeout(2000)
      assert(s:setpeername(host, port))
      socks[k] = s
    end
    return s
  end
  local domains = job.domains
  local id = 0
  while job.next < #domains do
    job.next = job.next + 1
    local d = domains[job.next]
    id = band(id + 1, 65535)
    local p = ask(sock(1), query(id, d, 15))
    local ok = false
    if p and band(byte(p, 4), 15) == 0 then
      local hosts = answers(p, 15, {})
      local qs = {}
      for h, name in ipairs(hosts) do
        id = band(id + 1, 65535)
        qs[2 * h - 1] = query(id, name, 1)
        id = band(id + 1, 65535)
        qs[2 * h] = query(id, name, 28)
      end
      for k, q in ipairs(qs) do sock(k + 1):send(q) end
      local addrs = {}
      for k, q in ipairs(qs) do
        local r = reply(sock(k + 1), q)
        if r then answers(r, k % 2 == 1 and 1 or 28, addrs) end
      end
      ok = #hosts > 0 and #addrs > 0
      job.targets = job.targets + #addrs
    end
    job.finished = job.finished + 1
    if not ok then job.failed = job.failed + 1 end
  end
  for _, s in pairs(socks) do s:close() end
end

---------------------------------------------------------------------------
-- mxroute.ngx

local function mxroute_thread(job)
  local r, domains, expect = job.resolver, job.domains, job.expect
  while job.next < #domains do
    job.next = job.next + 1
    local d = domains[job.next]
    local plan = r:resolve(d)
    job.finished = job.finished + 1
    if plan then
      job.targets = job.targets + #plan.targets
      if not plan_ok(expect[d], plan) then job.wrong = job.wrong + 1 end
    else
      job.failed = job.failed + 1
    end
  end
end

--- GET /run: one client, D light threads; one result line.
function M.run()
  local args = ngx.req.get_uri_args()
  local client, d = args.client, tonumber(args.d)
  local host, port = args.server:match("^(.*):(%d+)$")
  local domains = read_domains(args.file)
  local job = { domains = domains, next = 0, finished = 0, failed = 0, wrong = 0,
                targets = 0, host = host, port = tonumber(port) }
  local body, name
  if client == "mxroute" then
    job.expect = expected(domains)
    job.resolver = mxngx.resolver { nameservers = { args.server }, timeout = 2, tries = 3,
                                    cache = false, max_inflight = tonumber(args.max_inflight) }
    body, name = mxroute_thread, "mxroute.ngx"
  else
    body, name = peer_thread, "cosocket peer"
  end
  collectgarbage()
  local c0 = os.clock()
  ngx.update_time()
  local t0 = ngx.now()
  local threads = {}
  for i = 1, math.min(d, #domains) do threads[i] = spawn(body, job) end
  for _, th in ipairs(threads) do
    local ok, err = wait(th)
    if not ok then ngx.log(ngx.ERR, "bench thread: ", err) end
  end
  ngx.update_time()
  local secs = ngx.now() - t0
  local cpu = os.clock() - c0
  if job.resolver then job.resolver:close() end
  ngx.say(("%s: plans=%d failed=%d wrong=%d seconds=%.3f plans_per_s=%.0f targets=%d"
    .. " cpu_us_per_plan=%.1f"):format(name, job.finished, job.failed, job.wrong, secs,
      job.finished / secs, job.targets, cpu * 1e6 / math.max(job.finished, 1)))
end

return M
