#!lua flags=allow-oom
--[[
lock/release.lua -- release a lock only if the caller still owns it.

Flag allow-oom: releasing only frees memory, so it must keep working when the server is over
maxmemory (a flagged script without it is refused outright in that state, and locks would then
stay held until their TTL).

KEYS:
  KEYS[1]  the lock, e.g. {lock}:job:<name>
ARGV:
  ARGV[1]  owner token given to lock/acquire.lua
Returns:
  1  the lock was held by ARGV[1] and is now deleted
  0  not held, or held by another owner (left untouched)
Error replies (first word is the stable code):
  WRONG_ARITY    not exactly 1 KEY and 1 ARGV
  INVALID_TOKEN  ARGV[1] is empty
  (WRONGTYPE from the server if the lock key holds a non-string.)
]]

if #KEYS ~= 1 or #ARGV ~= 1 then
  return redis.error_reply('WRONG_ARITY release expects 1 KEY and 1 ARGV')
end
if ARGV[1] == '' then
  return redis.error_reply('INVALID_TOKEN owner token must not be empty')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
