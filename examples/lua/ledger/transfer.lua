#!lua
--[[
ledger/transfer.lua -- move funds between two accounts atomically, optionally idempotent.

KEYS (all must share one hash tag so they live in one slot, e.g. "{ledger}"):
  KEYS[1]  source balance        e.g. {ledger}:acct:<from>   string holding an integer (minor units)
  KEYS[2]  destination balance   e.g. {ledger}:acct:<to>     string holding an integer (minor units)
  KEYS[3]  optional idempotency record for this transfer id, e.g. {ledger}:xfer:<transfer_id>
           (a hash: from, to, amount, from_balance, to_balance). When given, a second call with the
           same KEYS[3] does not move money again.
ARGV:
  ARGV[1]  amount: positive integer, 1 .. 2^53-1 (decimal digits only, no sign/decimal point)
  ARGV[2]  optional, only with KEYS[3]: seconds to keep the idempotency record (default 86400)

Both accounts must already exist (a transfer never creates an account: a mistyped id is an error,
not a new account holding the money). Every check runs before the first write, so an error reply
always means nothing was changed.

Returns {from_balance, to_balance, applied}:
  applied = 1: the transfer was made now; balances are the new ones.
  applied = 0: KEYS[3] already recorded this transfer with the same from/to/amount; nothing moved,
               balances are those recorded when it was applied.
Error replies (first word is the stable code):
  WRONG_ARITY          not 2 or 3 KEYS, or ARGV[2] without KEYS[3]
  INVALID_AMOUNT       ARGV[1] not a positive integer in range
  INVALID_TTL          ARGV[2] not a positive integer
  SAME_ACCOUNT         KEYS[1] == KEYS[2]
  ACCOUNT_NOT_FOUND    KEYS[1] or KEYS[2] does not exist
  CORRUPT_BALANCE      a stored balance is not an integer in the safe range
  INSUFFICIENT_FUNDS   source balance < amount (a balance never goes negative)
  BALANCE_OVERFLOW     destination would exceed 2^53-1
  IDEMPOTENCY_CONFLICT KEYS[3] records a transfer with different from/to/amount
  (WRONGTYPE from the server if a key holds a non-string; still nothing written.)
]]

local MAX_SAFE = 9007199254740991 -- 2^53-1: Lua 5.1 numbers are doubles, exact up to here
local DEFAULT_RECORD_TTL = 86400

-- A decimal integer string within +-MAX_SAFE, or nil.
local function parse_int(s, allow_negative)
  if type(s) ~= 'string' then return nil end
  local pattern = allow_negative and '^%-?%d+$' or '^%d+$'
  if #s > 17 or not string.match(s, pattern) then return nil end
  local n = tonumber(s)
  if n == nil or n > MAX_SAFE or n < -MAX_SAFE then return nil end
  return n
end

if #KEYS ~= 2 and #KEYS ~= 3 then
  return redis.error_reply('WRONG_ARITY transfer expects 2 or 3 KEYS, got ' .. #KEYS)
end
if #KEYS == 2 and #ARGV > 1 then
  return redis.error_reply('WRONG_ARITY ARGV[2] (record ttl) is only valid with KEYS[3]')
end

local amount = parse_int(ARGV[1], false)
if amount == nil or amount < 1 then
  return redis.error_reply('INVALID_AMOUNT amount must be a positive integer, got ' .. tostring(ARGV[1]))
end

local record_ttl = DEFAULT_RECORD_TTL
if ARGV[2] ~= nil then
  record_ttl = parse_int(ARGV[2], false)
  if record_ttl == nil or record_ttl < 1 then
    return redis.error_reply('INVALID_TTL record ttl must be a positive integer, got ' .. ARGV[2])
  end
end

if KEYS[1] == KEYS[2] then
  return redis.error_reply('SAME_ACCOUNT source and destination are the same key')
end

if #KEYS == 3 then
  local rec = redis.call('HMGET', KEYS[3], 'from', 'to', 'amount', 'from_balance', 'to_balance')
  if rec[1] then
    if rec[1] ~= KEYS[1] or rec[2] ~= KEYS[2] or tonumber(rec[3]) ~= amount then
      return redis.error_reply('IDEMPOTENCY_CONFLICT transfer id already used for a different transfer')
    end
    return {tonumber(rec[4]), tonumber(rec[5]), 0}
  end
end

local from_raw = redis.call('GET', KEYS[1])
local to_raw = redis.call('GET', KEYS[2])
if not from_raw then
  return redis.error_reply('ACCOUNT_NOT_FOUND source account does not exist')
end
if not to_raw then
  return redis.error_reply('ACCOUNT_NOT_FOUND destination account does not exist')
end
local from_balance = parse_int(from_raw, true)
local to_balance = parse_int(to_raw, true)
if from_balance == nil then
  return redis.error_reply('CORRUPT_BALANCE source balance is not a safe integer')
end
if to_balance == nil then
  return redis.error_reply('CORRUPT_BALANCE destination balance is not a safe integer')
end
if from_balance < amount then
  return redis.error_reply('INSUFFICIENT_FUNDS balance ' .. from_raw .. ' < amount ' .. ARGV[1])
end
if to_balance > MAX_SAFE - amount then
  return redis.error_reply('BALANCE_OVERFLOW destination balance would exceed 2^53-1')
end

-- All checks passed: write. DECRBY/INCRBY do exact 64-bit arithmetic on the server.
local new_from = redis.call('DECRBY', KEYS[1], amount)
local new_to = redis.call('INCRBY', KEYS[2], amount)
if #KEYS == 3 then
  redis.call('HSET', KEYS[3], 'from', KEYS[1], 'to', KEYS[2], 'amount', amount,
    'from_balance', new_from, 'to_balance', new_to)
  redis.call('EXPIRE', KEYS[3], record_ttl)
end
return {new_from, new_to, 1}
