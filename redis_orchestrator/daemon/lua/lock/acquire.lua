#!lua
--[[
lock/acquire.lua -- take a lock with an owner token and a TTL (re-entrant for the same owner), and
optionally get a fencing token for it.

KEYS:
  KEYS[1]  the lock, e.g. {lock}:job:<name>   string holding the owner token, with a PX TTL
  KEYS[2]  optional: the lock's fence, e.g. {lock}:job:<name>:fence (same hash tag as KEYS[1]);
           holds the last fencing token granted for this lock; never expires
ARGV:
  ARGV[1]  owner token: non-empty string, unique per holder (e.g. a random UUID)
  ARGV[2]  ttl in milliseconds: positive integer

Returns:
  0  held by a different owner; nothing changed
  Without KEYS[2]:
    1  acquired: the lock was free (SET NX PX), or this owner already held it, in which case its
       TTL is reset to ARGV[2] (re-acquiring refreshes; it never shortens another owner's lock)
  With KEYS[2], the fencing token instead of 1: a positive integer larger than every token granted
  before for this lock. Send it with every write to the guarded resource and let the resource refuse
  a token lower than the highest it has seen: a holder whose lock expired, or was lost in a failover,
  is then refused once the next holder has written. Re-acquiring by the holder returns its token.

  The token is max(last token + 1, the server's clock in microseconds). The clock part is for
  failovers: replication is asynchronous, so a promoted replica may lack the last grants (and the
  lock itself: two holders at once is possible). Its clock has moved on, so its next token is still
  larger than any granted before -- provided the old and the new primary's clocks differ by less than
  the time between the lost grant and the next one (same host: always). The `+ 1` keeps tokens
  growing on one primary even if its clock steps back. No claim beyond that: this is one Redis
  primary's lock, not a consensus lock (no Redlock).
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY    not 1 or 2 KEYS, or not exactly 2 ARGV
  INVALID_TOKEN  ARGV[1] is empty
  INVALID_TTL    ARGV[2] not a positive integer of at most 15 digits
  CORRUPT_FENCE  KEYS[2] does not hold a non-negative integer
  (WRONGTYPE from the server if the lock key holds a non-string.)
]]

if (#KEYS ~= 1 and #KEYS ~= 2) or #ARGV ~= 2 then
  return redis.error_reply('WRONG_ARITY acquire expects 1 or 2 KEYS and 2 ARGV')
end
if ARGV[1] == '' then
  return redis.error_reply('INVALID_TOKEN owner token must not be empty')
end
local ttl_ms = nil
if #ARGV[2] <= 15 and string.match(ARGV[2], '^%d+$') then
  ttl_ms = tonumber(ARGV[2])
end
if ttl_ms == nil or ttl_ms < 1 then
  return redis.error_reply('INVALID_TTL ttl must be a positive integer (milliseconds), got ' .. ARGV[2])
end

local last = nil
if #KEYS == 2 then
  local raw = redis.call('GET', KEYS[2])
  last = 0
  if raw then
    last = nil
    if #raw <= 16 and string.match(raw, '^%d+$') then
      last = tonumber(raw)
    end
    if last == nil then
      return redis.error_reply('CORRUPT_FENCE the fence does not hold a non-negative integer')
    end
  end
end

-- A new grant: with a fence, the next token (see the header for why the clock is part of it).
local function granted()
  if last == nil then
    return 1
  end
  local now = redis.call('TIME')
  local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if token <= last then
    token = last + 1
  end
  -- %.0f: Lua 5.1 would print a 16-digit number as 1.7e+15
  redis.call('SET', KEYS[2], string.format('%.0f', token))
  return token
end

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl_ms) then
  return granted()
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  if last == nil then
    return 1
  end
  if last == 0 then
    return granted() -- held from before the fence was used: grant its first token now
  end
  return last
end
return 0
