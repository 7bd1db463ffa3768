#!lua flags=allow-oom
--[[
lock/extend.lua -- reset a lock's TTL only if the caller still owns it.

Flag allow-oom: PEXPIRE does not grow memory, and a holder must be able to keep its lock alive
while the server is over maxmemory (a flagged script without it would be refused in that state).

KEYS:
  KEYS[1]  the lock, e.g. {lock}:job:<name>
ARGV:
  ARGV[1]  owner token given to lock/acquire.lua
  ARGV[2]  new ttl in milliseconds from now: positive integer (replaces the remaining TTL; it may
           shorten it)
Returns:
  1  the lock is held by ARGV[1]; its TTL is now ARGV[2] ms
  0  not held (expired or released), or held by another owner; nothing changed
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY    not exactly 1 KEY and 2 ARGV
  INVALID_TOKEN  ARGV[1] is empty
  INVALID_TTL    ARGV[2] not a positive integer
  (WRONGTYPE from the server if the lock key holds a non-string.)
]]

if #KEYS ~= 1 or #ARGV ~= 2 then
  return redis.error_reply('WRONG_ARITY extend expects 1 KEY and 2 ARGV')
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
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return 0
