--[[
  Read lock of a read-write lock. Each reader's timeout key hangs off KEYS[2], the lock's
  timeout prefix "{<name>}:rwlock_timeout" (same tag as the lock).
    KEYS[1] lock hash, KEYS[2] timeout prefix
    ARGV[1] lease (ms), ARGV[2] reader id, ARGV[3] write-lock owner id
]]
local mode = redis.call('HGET', KEYS[1], 'mode')
if mode == false then
  redis.call('HSET', KEYS[1], 'mode', 'read', ARGV[2], 1)
  redis.call('SET', KEYS[2] .. ':' .. ARGV[2] .. ':1', 1, 'PX', ARGV[1]) --@ safe keys-prefix
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return nil
end
if mode == 'read' or (mode == 'write' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1) then
  local n = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  local timeoutKey = KEYS[2] .. ':' .. ARGV[2] .. ':' .. n
  redis.call('SET', timeoutKey, 1, 'PX', ARGV[1]) --@ safe keys-prefix
  local remaining = redis.call('PTTL', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], math.max(remaining, tonumber(ARGV[1])))
  return nil
end
return redis.call('PTTL', KEYS[1])
