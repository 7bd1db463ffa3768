#!lua flags=no-writes
--[[
counters/get.lua -- read a counter; read-only, so it may run on replicas (EVAL_RO / EVALSHA_RO
with READONLY) and while the server is over maxmemory.

KEYS:
  KEYS[1]  the counter, e.g. {quota}:user:<id>
ARGV:    none
Returns: the integer value; 0 when the key does not exist.
Error replies (first word is the stable code):
  WRONG_ARITY    not exactly 1 KEY
  CORRUPT_VALUE  the stored value is not an integer in the safe range (|v| <= 2^53-1)
  (WRONGTYPE from the server if the key holds a non-string.)
]]

local MAX_SAFE = 9007199254740991

if #KEYS ~= 1 then
  return redis.error_reply('WRONG_ARITY get expects 1 KEY, got ' .. #KEYS)
end
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
local n = nil
if #raw <= 17 and string.match(raw, '^%-?%d+$') then
  n = tonumber(raw)
end
if n == nil or n > MAX_SAFE or n < -MAX_SAFE then
  return redis.error_reply('CORRUPT_VALUE counter does not hold a safe integer')
end
return n
