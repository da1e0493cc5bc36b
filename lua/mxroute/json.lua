--- A small, deterministic JSON encoder.
--
-- The CLI prints plans as JSON with a fixed key order (the order of the
-- plan in DESIGN section 2), which general-purpose encoders do not give.
-- This module encodes exactly what it is handed:
--
--   * `nil` and `json.null` -> `null`; booleans; strings (always valid
--     UTF-8 on output: an invalid byte becomes U+FFFD); numbers (integral
--     values without a fraction, NaN and infinities as `null`);
--   * tables marked with `json.array(t)` -> arrays of `t[1] .. t[t.n or #t]`
--     (empty ones stay `[]`);
--   * tables marked with `json.object(t, keys)` -> objects whose members
--     come in the order of `keys` (members whose value is `nil` are left
--     out), then any other string keys in sorted order;
--   * other tables: an array if their keys are exactly 1..n (n >= 1),
--     otherwise an object with sorted keys (`{}` when empty).
--
-- Cycles raise an error; so do keys that are neither strings nor numbers,
-- and values of other types (functions, userdata, threads).
local M = {}

--- Sentinel encoded as `null` (useful inside arrays, where `nil` would end
-- the sequence).
M.null = setmetatable({}, { __tostring = function() return "null" end })

local ARRAY = {}  -- metatable marking arrays
local ORDER = setmetatable({}, { __mode = "k" }) -- object table -> keys

--- Mark `t` as a JSON array (so that an empty table encodes as `[]`).
-- Returns `t`.
function M.array(t)
  return setmetatable(t, ARRAY)
end

--- Mark `t` as a JSON object whose members are written in the order of
-- the list `keys`. Returns `t`.
function M.object(t, keys)
  ORDER[t] = keys
  return t
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

-- Escape a control byte (below 0x20, or DEL), a quote or a backslash.
local function control(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end

-- Replace every byte that is not part of a well-formed UTF-8 sequence
-- (RFC 3629: no overlongs, no surrogates, at most U+10FFFF) with U+FFFD.
local function utf8_clean(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, lo, hi = 0, 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    end
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      local c2 = s:byte(i + 1)
      ok = c2 >= lo and c2 <= hi
      for j = i + 2, i + len - 1 do
        local cj = s:byte(j)
        if cj < 0x80 or cj > 0xBF then ok = false end
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "\239\191\189" -- U+FFFD
      i = i + 1
    end
  end
  return table.concat(out)
end

--- Encode a string as a JSON string literal (with the quotes).
function M.string(s)
  -- Lua never sets a locale by itself, so %c is C's iscntrl: 0-31, 127.
  s = utf8_clean(s):gsub('[%c"\\]', control)
  return '"' .. s .. '"'
end

--- Encode a number: integral values as integers, others with the fewest
-- digits that read back as the same number; NaN and infinities as `null`.
function M.number(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and x > -2^63 and x < 2^63 then
    return string.format("%d", x)
  end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then return s end
  end
  return string.format("%.17g", x)
end

local encode

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
      return false
    end
    n = n + 1
  end
  return n > 0 and n == #t
end

local function key_string(k)
  if type(k) == "string" then return k end
  if type(k) == "number" then return M.number(k) end
  error("json: cannot encode a key of type " .. type(k), 0)
end

local function encode_array(t, n, buf, seen)
  buf[#buf + 1] = "["
  for i = 1, n do
    if i > 1 then buf[#buf + 1] = "," end
    encode(t[i], buf, seen)
  end
  buf[#buf + 1] = "]"
end

local function encode_object(t, keys, buf, seen)
  local done, first = {}, true
  local function member(k, v)
    if not first then buf[#buf + 1] = "," end
    first = false
    buf[#buf + 1] = M.string(key_string(k))
    buf[#buf + 1] = ":"
    encode(v, buf, seen)
  end
  for _, k in ipairs(keys) do
    done[k] = true
    if t[k] ~= nil then member(k, t[k]) end
  end
  local rest = {}
  for k in pairs(t) do
    if not done[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return key_string(a) < key_string(b) end)
  for _, k in ipairs(rest) do member(k, t[k]) end
  buf[#buf + 1] = "}"
end

function encode(v, buf, seen)
  local ty = type(v)
  if v == nil or v == M.null then
    buf[#buf + 1] = "null"
  elseif ty == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif ty == "number" then
    buf[#buf + 1] = M.number(v)
  elseif ty == "string" then
    buf[#buf + 1] = M.string(v)
  elseif ty == "table" then
    if seen[v] then error("json: cannot encode a cyclic table", 0) end
    seen[v] = true
    if getmetatable(v) == ARRAY then
      encode_array(v, v.n or #v, buf, seen)
    elseif ORDER[v] then
      buf[#buf + 1] = "{"
      encode_object(v, ORDER[v], buf, seen)
    elseif is_sequence(v) then
      encode_array(v, #v, buf, seen)
    else
      buf[#buf + 1] = "{"
      encode_object(v, {}, buf, seen)
    end
    seen[v] = nil
  else
    error("json: cannot encode a value of type " .. ty, 0)
  end
end

--- Encode `v` as one line of JSON text (no trailing newline).
function M.encode(v)
  local buf = {}
  encode(v, buf, {})
  return table.concat(buf)
end

return M
