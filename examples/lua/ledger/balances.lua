#!lua flags=no-writes
--[[
ledger/balances.lua -- read several balances as one snapshot; read-only, so it may run on replicas
(EVALSHA_RO after READONLY) and while the server is over maxmemory.

A replica applies each transfer's writes as one unit (a script's effects are replicated wrapped in
MULTI/EXEC), so a snapshot read there never shows half of a transfer: the total is conserved in
every snapshot, on the primary and on its replicas alike.

KEYS:
  KEYS[1..n]  balance keys, at least one, all in one slot, e.g. {ledger}:acct:<id>
ARGV:    none
Returns {total, missing, balance_1, ..., balance_n}:
  total    the sum of the balances that exist
  missing  how many of the keys do not exist (their balance is given as 0)
Error replies (first word is the stable code):
  WRONG_ARITY      no KEYS, or any ARGV
  CORRUPT_BALANCE  a stored balance is not an integer in the safe range (|v| <= 2^53-1)
  TOTAL_OVERFLOW   the total leaves the safe range
  (WRONGTYPE from the server if a key holds a non-string.)
]]

local MAX_SAFE = 9007199254740991

if #KEYS < 1 or #ARGV ~= 0 then
  return redis.error_reply('WRONG_ARITY balances expects at least 1 KEY and no ARGV')
end
local values = redis.call('MGET', unpack(KEYS))
local result = {0, 0}
local total = 0
for i, raw in ipairs(KEYS) do
  local value = values[i]
  local n = 0
  if value then
    n = nil
    if #value <= 17 and string.match(value, '^%-?%d+$') then
      n = tonumber(value)
    end
    if n == nil or n > MAX_SAFE or n < -MAX_SAFE then
      return redis.error_reply('CORRUPT_BALANCE ' .. raw .. ' does not hold a safe integer')
    end
  else
    result[2] = result[2] + 1
  end
  total = total + n
  if total > MAX_SAFE or total < -MAX_SAFE then
    return redis.error_reply('TOTAL_OVERFLOW the total leaves the safe integer range')
  end
  result[i + 2] = n
end
result[1] = total
return result
