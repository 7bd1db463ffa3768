--[[
  Reentrant lock in a hash (owner -> hold count), with a counter of waiters beside it.
  The client names the lock "{lock:<name>}" so everything of one lock shares its slot.
    KEYS[1] the lock hash
    ARGV[1] lease (ms), ARGV[2] owner id
]]
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('DECR', KEYS[1] .. ':waiters') --@ safe keys-prefix
  return nil
end
redis.call('INCR', KEYS[1] .. ':waiters') --@ safe keys-prefix
return redis.call('PTTL', KEYS[1])
