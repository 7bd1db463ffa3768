#!lua
--[[
counters/capped_incr.lua -- increment a counter, never past a cap (all or nothing).

KEYS:
  KEYS[1]  the counter, e.g. {quota}:user:<id>   string holding a non-negative integer
ARGV:
  ARGV[1]  increment: positive integer (1 .. 2^53-1)
  ARGV[2]  cap: non-negative integer (0 .. 2^53-1); the counter never exceeds it
  ARGV[3]  optional TTL in seconds (positive integer), set only when this call creates the key;
           an existing key keeps whatever TTL it has (none included)

If value + increment <= cap the counter is incremented; otherwise nothing changes (the increment
is refused whole, it is not clipped to the cap) and no key is created.

Returns {value, applied}:
  {new_value, 1}      incremented
  {current_value, 0}  refused because it would pass the cap (current_value is 0 for a missing key)
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY        not exactly 1 KEY, or fewer than 2 / more than 3 ARGV
  INVALID_INCREMENT  ARGV[1] not a positive integer in range
  INVALID_CAP        ARGV[2] not a non-negative integer in range
  INVALID_TTL        ARGV[3] not a positive integer
  CORRUPT_VALUE      the stored value is not an integer in the safe range
]]

local MAX_SAFE = 9007199254740991 -- 2^53-1: Lua 5.1 numbers are doubles, exact up to here

-- A decimal integer string within +-MAX_SAFE, or nil.
local function parse_int(s, allow_negative)
  if type(s) ~= 'string' then return nil end
  local pattern = allow_negative and '^%-?%d+$' or '^%d+$'
  if #s > 17 or not string.match(s, pattern) then return nil end
  local n = tonumber(s)
  if n == nil or n > MAX_SAFE or n < -MAX_SAFE then return nil end
  return n
end

if #KEYS ~= 1 or #ARGV < 2 or #ARGV > 3 then
  return redis.error_reply('WRONG_ARITY capped_incr expects 1 KEY and 2 or 3 ARGV')
end
local increment = parse_int(ARGV[1], false)
if increment == nil or increment < 1 then
  return redis.error_reply('INVALID_INCREMENT increment must be a positive integer, got ' .. ARGV[1])
end
local cap = parse_int(ARGV[2], false)
if cap == nil then
  return redis.error_reply('INVALID_CAP cap must be a non-negative integer, got ' .. ARGV[2])
end
local ttl = nil
if ARGV[3] ~= nil then
  ttl = parse_int(ARGV[3], false)
  if ttl == nil or ttl < 1 then
    return redis.error_reply('INVALID_TTL ttl must be a positive integer (seconds), got ' .. ARGV[3])
  end
end

local raw = redis.call('GET', KEYS[1])
local current = 0
if raw then
  current = parse_int(raw, true)
  if current == nil then
    return redis.error_reply('CORRUPT_VALUE counter does not hold a safe integer')
  end
end

if current > cap - increment then
  return {current, 0}
end

if not raw then
  if ttl then
    redis.call('SET', KEYS[1], increment, 'EX', ttl)
  else
    redis.call('SET', KEYS[1], increment)
  end
  return {increment, 1}
end
return {redis.call('INCRBY', KEYS[1], increment), 1}
