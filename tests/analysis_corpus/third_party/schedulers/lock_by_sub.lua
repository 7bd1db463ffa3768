-- Locks a schedule while it runs; KEYS[1] is "{sched:<name>}:jobs", the lock "{sched:<name>}:lock".
-- ARGV[1] token, ARGV[2] ttl (ms)
local base = KEYS[1]:sub(1, #KEYS[1] - 4)
local ok = redis.call('SET', base .. 'lock', ARGV[1], 'NX', 'PX', ARGV[2]) --@ safe tag-cut
if not ok then
  return 0
end
redis.call('INCR', base .. 'runs') --@ safe tag-cut
return 1
