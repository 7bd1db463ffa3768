#!lua
--[[
lock/acquire.lua -- take a lock with an owner token and a TTL (re-entrant for the same owner).

KEYS:
  KEYS[1]  the lock, e.g. {lock}:job:<name>   string holding the owner token, with a PX TTL
ARGV:
  ARGV[1]  owner token: non-empty string, unique per holder (e.g. a random UUID)
  ARGV[2]  ttl in milliseconds: positive integer

Returns:
  1  acquired: the lock was free (SET NX PX), or this owner already held it, in which case its
     TTL is reset to ARGV[2] (re-acquiring refreshes; it never shortens another owner's lock)
  0  held by a different owner; nothing changed
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY    not exactly 1 KEY and 2 ARGV
  INVALID_TOKEN  ARGV[1] is empty
  INVALID_TTL    ARGV[2] not a positive integer of at most 15 digits
  (WRONGTYPE from the server if the lock key holds a non-string.)
]]

if #KEYS ~= 1 or #ARGV ~= 2 then
  return redis.error_reply('WRONG_ARITY acquire expects 1 KEY and 2 ARGV')
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

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl_ms) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  return 1
end
return 0
