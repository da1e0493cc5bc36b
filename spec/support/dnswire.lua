--- A small DNS message builder and parser for the test fixtures.
--
-- Pure Lua, compatible with Lua 5.1 (LuaJIT) and 5.4: no bit operators,
-- no string.pack.  It is used by the fault server and by specs that need
-- to look at raw replies; the library itself never uses it (it parses
-- with c-ares).  It is deliberately strict when parsing, and lets the
-- caller build anything, including broken packets.
local M = {}

local byte, char, floor = string.byte, string.char, math.floor
local concat, format = table.concat, string.format

--- Record type codes, by name, and names by code.
M.types = {
  A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16,
  AAAA = 28, SRV = 33, OPT = 41, ANY = 255,
}
M.type_names = {}
for k, v in pairs(M.types) do M.type_names[v] = k end

--- Response codes, by name, and names by code (RFC 1035 4.1.1, RFC 2136).
M.rcodes = {
  NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4,
  REFUSED = 5, YXDOMAIN = 6, YXRRSET = 7, NXRRSET = 8, NOTAUTH = 9,
  NOTZONE = 10,
}
M.rcode_names = {}
for k, v in pairs(M.rcodes) do M.rcode_names[v] = k end

--- Type code for a name ("MX"), a code (15) or a numeric string ("15").
-- Returns nil for anything else.
function M.type_code(t)
  if type(t) == "number" then return t end
  if type(t) ~= "string" then return nil end
  return M.types[t:upper()] or tonumber(t)
end

--- Printable name of a type code: "MX", or the number itself if unknown.
function M.type_name(code)
  return M.type_names[code] or code
end

--- Rcode for a name ("SERVFAIL") or a number; nil for anything else.
function M.rcode_code(r)
  if type(r) == "number" then return r end
  if type(r) ~= "string" then return nil end
  return M.rcodes[r:upper()] or tonumber(r)
end

--- Canonical form of a name for comparisons: lower case, no final dot.
function M.canon(name)
  name = name:lower()
  if #name > 1 and name:sub(-1) == "." then name = name:sub(1, -2) end
  if name == "." then name = "" end
  return name
end

-- Integers to big-endian octets, by hand (no string.pack in Lua 5.1).
function M.u16(n)
  n = floor(n) % 65536
  return char(floor(n / 256), n % 256)
end

function M.u32(n)
  n = floor(n) % 4294967296
  return char(floor(n / 16777216), floor(n / 65536) % 256,
              floor(n / 256) % 256, n % 256)
end

function M.get_u16(s, pos)
  local a, b = byte(s, pos, pos + 1)
  if not b then return nil end
  return a * 256 + b
end

function M.get_u32(s, pos)
  local a, b, c, d = byte(s, pos, pos + 3)
  if not d then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

--- XOR of two 16-bit numbers (used to make a wrong query ID).
function M.xor16(a, b)
  local r, bit = 0, 1
  for _ = 1, 16 do
    if a % 2 ~= b % 2 then r = r + bit end
    a, b, bit = floor(a / 2), floor(b / 2), bit * 2
  end
  return r
end

--- Wire form of a name, uncompressed.  "" and "." are the root.
-- Raises on an empty or over-long label (they cannot be expressed).
function M.encode_name(name)
  if name == "" or name == "." then return "\0" end
  if name:sub(-1) == "." then name = name:sub(1, -2) end
  local out = {}
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 then
      error("dnswire: bad label in name '" .. name .. "'", 2)
    end
    out[#out + 1] = char(#label) .. label
  end
  out[#out + 1] = "\0"
  return concat(out)
end

--- Decode a (possibly compressed) name at `pos` (1-based).
-- Returns name (no final dot, "" for the root) and the position after
-- it, or nil and a message for a truncated name, a pointer loop, a bad
-- label type or a name over 255 octets.
function M.decode_name(msg, pos)
  local labels, wirelen, jumps, after = {}, 1, 0, nil
  while true do
    local len = byte(msg, pos)
    if not len then return nil, "name runs past the end" end
    if len >= 192 then
      local b2 = byte(msg, pos + 1)
      if not b2 then return nil, "compression pointer runs past the end" end
      jumps = jumps + 1
      if jumps > 64 then return nil, "compression pointer loop" end
      after = after or pos + 2
      pos = (len - 192) * 256 + b2 + 1
    elseif len >= 64 then
      return nil, "bad label type"
    elseif len == 0 then
      return concat(labels, "."), after or pos + 1
    else
      if pos + len > #msg then return nil, "label runs past the end" end
      wirelen = wirelen + len + 1
      if wirelen > 255 then return nil, "name longer than 255 octets" end
      labels[#labels + 1] = msg:sub(pos + 1, pos + len)
      pos = pos + len + 1
    end
  end
end

--- IPv4 text to 4 octets; raises on bad input.
function M.ipv4(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if not (a and a < 256 and b < 256 and c < 256 and d < 256) then
    error("dnswire: bad IPv4 address '" .. tostring(text) .. "'", 2)
  end
  return char(a, b, c, d)
end

--- IPv6 text (with "::" and a trailing dotted quad allowed) to 16 octets.
function M.ipv6(text)
  local function bad() error("dnswire: bad IPv6 address '" .. tostring(text) .. "'", 3) end
  local s = tostring(text)
  local v4 = s:match("[:](%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    -- a trailing dotted quad stands for the last two groups
    local ok, b = pcall(M.ipv4, v4)
    if not ok then bad() end
    s = s:sub(1, #s - #v4) .. format("%x:%x", M.get_u16(b, 1), M.get_u16(b, 3))
  end
  local function groups(part)
    local g = {}
    if part == "" then return g end
    for h in (part .. ":"):gmatch("([^:]*):") do
      if not h:match("^%x%x?%x?%x?$") then bad() end
      g[#g + 1] = tonumber(h, 16)
    end
    return g
  end
  local g
  local head, rest = s:match("^(.-)::(.*)$")
  if head then
    if rest:find("::", 1, true) then bad() end
    local hg, tg = groups(head), groups(rest)
    if #hg + #tg > 7 then bad() end
    g = hg
    for _ = 1, 8 - #hg - #tg do g[#g + 1] = 0 end
    for _, v in ipairs(tg) do g[#g + 1] = v end
  else
    g = groups(s)
    if #g ~= 8 then bad() end
  end
  local out = {}
  for i = 1, 8 do out[i] = M.u16(g[i]) end
  return concat(out)
end

--- 4 or 16 octets to text (IPv6 in RFC 5952 form, without the dotted
-- quad special case).
function M.addr_text(b)
  if #b == 4 then
    return format("%d.%d.%d.%d", byte(b, 1, 4))
  elseif #b ~= 16 then
    return nil
  end
  local g = {}
  for i = 1, 8 do g[i] = M.get_u16(b, 2 * i - 1) end
  -- longest run of at least two zero groups, first one on ties
  local best, bestlen, i = nil, 1, 1
  while i <= 8 do
    if g[i] == 0 then
      local j = i
      while j <= 8 and g[j] == 0 do j = j + 1 end
      if j - i > bestlen then best, bestlen = i, j - i end
      i = j
    else
      i = i + 1
    end
  end
  local parts = {}
  local k = 1
  while k <= 8 do
    if k == best then
      parts[#parts + 1] = (k == 1) and ":" or ""
      k = k + bestlen
      if k > 8 then parts[#parts + 1] = "" end
    else
      parts[#parts + 1] = format("%x", g[k])
      k = k + 1
    end
  end
  return (concat(parts, ":"):gsub(":::", "::"))
end

--- Header flags as one 16-bit word.  `h` fields: qr, aa, tc, rd, ra
-- (booleans), opcode, z, rcode (numbers, only the low 4 bits of rcode).
function M.flags(h)
  local function b(v) return v and 1 or 0 end
  return b(h.qr) * 32768 + ((h.opcode or 0) % 16) * 2048 + b(h.aa) * 1024
       + b(h.tc) * 512 + b(h.rd) * 256 + b(h.ra) * 128
       + ((h.z or 0) % 8) * 16 + (h.rcode or 0) % 16
end

--- The 12-octet header.  `h` as for flags, plus id and the four counts
-- (qdcount, ancount, nscount, arcount; 0 when absent).
function M.header(h)
  return M.u16(h.id or 0) .. M.u16(M.flags(h)) .. M.u16(h.qdcount or 0)
      .. M.u16(h.ancount or 0) .. M.u16(h.nscount or 0) .. M.u16(h.arcount or 0)
end

--- Decode the header; nil and a message when shorter than 12 octets.
function M.parse_header(msg)
  if #msg < 12 then return nil, "message shorter than a header" end
  local f = M.get_u16(msg, 3)
  local function bit(n) return floor(f / n) % 2 == 1 end
  return {
    id = M.get_u16(msg, 1), flags = f,
    qr = bit(32768), opcode = floor(f / 2048) % 16, aa = bit(1024),
    tc = bit(512), rd = bit(256), ra = bit(128), z = floor(f / 16) % 8,
    rcode = f % 16,
    qdcount = M.get_u16(msg, 5), ancount = M.get_u16(msg, 7),
    nscount = M.get_u16(msg, 9), arcount = M.get_u16(msg, 11),
  }
end

--- A question entry: name, type (name or code), class (default IN).
function M.question(name, qtype, qclass)
  return M.encode_name(name) .. M.u16(M.type_code(qtype) or 0) .. M.u16(qclass or 1)
end

--- A resource record from already encoded rdata.
function M.rr(name, rtype, ttl, rdata, class)
  return M.encode_name(name) .. M.u16(M.type_code(rtype) or 0) .. M.u16(class or 1)
      .. M.u32(ttl or 0) .. M.u16(#rdata) .. rdata
end

--- Rdata encoders for the usual types.
M.rdata = {
  A = function(text) return M.ipv4(text) end,
  AAAA = function(text) return M.ipv6(text) end,
  CNAME = function(name) return M.encode_name(name) end,
  NS = function(name) return M.encode_name(name) end,
  PTR = function(name) return M.encode_name(name) end,
  MX = function(pref, name) return M.u16(pref) .. M.encode_name(name) end,
  -- TXT: one string or a list of strings (each up to 255 octets)
  TXT = function(strings)
    if type(strings) == "string" then strings = { strings } end
    local out = {}
    for i, s in ipairs(strings) do
      if #s > 255 then error("dnswire: TXT string over 255 octets", 2) end
      out[i] = char(#s) .. s
    end
    return concat(out)
  end,
}

--- The OPT pseudo-record (RFC 6891) advertising a UDP payload size.
function M.opt(size)
  return "\0" .. M.u16(41) .. M.u16(size or 1232) .. M.u32(0) .. M.u16(0)
end

--- A query message.  q: id (default random), name, type (default A),
-- class, rd (default true), edns (a payload size, or true for 1232).
function M.query(q)
  local edns = q.edns
  if edns == true then edns = 1232 end
  return M.header {
    id = q.id or math.random(0, 65535), rd = q.rd ~= false, opcode = q.opcode,
    qdcount = 1, arcount = edns and 1 or 0,
  } .. M.question(q.name, q.type or "A", q.class) .. (edns and M.opt(edns) or "")
end

-- Decode rdata of known types into fields of rr; leaves others raw.
local function decode_rdata(msg, rr, pos)
  local t, len = rr.type, rr.rdlength
  if t == 1 and len == 4 or t == 28 and len == 16 then
    rr.address = M.addr_text(rr.rdata)
  elseif t == 5 or t == 2 or t == 12 then
    local name, err = M.decode_name(msg, pos)
    if not name then return nil, err end
    rr.target = name
  elseif t == 15 then
    if len < 3 then return nil, "MX rdata too short" end
    rr.preference = M.get_u16(msg, pos)
    local name, err = M.decode_name(msg, pos + 2)
    if not name then return nil, err end
    rr.exchange = name
  elseif t == 16 then
    local strings, p, stop = {}, 1, len
    while p <= stop do
      local n = byte(rr.rdata, p)
      if p + n > stop then return nil, "TXT string runs past the rdata" end
      strings[#strings + 1] = rr.rdata:sub(p + 1, p + n)
      p = p + n + 1
    end
    rr.strings = strings
  end
  return true
end

--- Parse a whole message.
-- Returns a table { header fields…, questions = { {name, type, class} },
-- answers, authority, additional = { {name, type, class, ttl, rdlength,
-- rdata, and decoded fields: address | target | preference+exchange |
-- strings} }, size } or nil, message, partial table.  `type` fields are
-- numbers; M.type_name turns them into text.
function M.parse(msg)
  local m, err = M.parse_header(msg)
  if not m then return nil, err, nil end
  m.size = #msg
  m.questions, m.answers, m.authority, m.additional = {}, {}, {}, {}
  local pos = 13
  for _ = 1, m.qdcount do
    local name, np = M.decode_name(msg, pos)
    if not name then return nil, "question: " .. np, m end
    if np + 3 > #msg then return nil, "question runs past the end", m end
    m.questions[#m.questions + 1] = {
      name = name, type = M.get_u16(msg, np), class = M.get_u16(msg, np + 2),
    }
    pos = np + 4
  end
  local sections = {
    { m.answers, m.ancount, "answer" }, { m.authority, m.nscount, "authority" },
    { m.additional, m.arcount, "additional" },
  }
  for _, sec in ipairs(sections) do
    for _ = 1, sec[2] do
      local name, np = M.decode_name(msg, pos)
      if not name then return nil, sec[3] .. ": " .. np, m end
      if np + 9 > #msg then return nil, sec[3] .. ": record header runs past the end", m end
      local rr = {
        name = name, type = M.get_u16(msg, np), class = M.get_u16(msg, np + 2),
        ttl = M.get_u32(msg, np + 4), rdlength = M.get_u16(msg, np + 8),
      }
      local rpos = np + 10
      if rpos + rr.rdlength - 1 > #msg then
        return nil, sec[3] .. ": rdata runs past the end", m
      end
      rr.rdata = msg:sub(rpos, rpos + rr.rdlength - 1)
      local ok, derr = decode_rdata(msg, rr, rpos)
      if not ok then return nil, sec[3] .. ": " .. derr, m end
      sec[1][#sec[1] + 1] = rr
      pos = rpos + rr.rdlength
    end
  end
  if pos <= #msg then m.trailing = #msg - pos + 1 end
  return m
end

--- Hex dump of a string, for failure messages.
function M.hex(s)
  return (s:gsub(".", function(c) return format("%02x", byte(c)) end))
end

return M
