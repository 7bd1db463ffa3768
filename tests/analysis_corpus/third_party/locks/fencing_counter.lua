-- Acquires a lock and hands out a fencing token from one global counter.
-- KEYS[1] lock key. ARGV[1] owner, ARGV[2] ttl (ms)
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', 'fencing:token') --@ fails fixed-key
end
return false
