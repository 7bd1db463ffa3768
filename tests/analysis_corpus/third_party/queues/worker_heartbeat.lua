-- Records a worker's heartbeat and registers the worker in a global set.
-- ARGV[1] worker id, ARGV[2] now, ARGV[3] ttl (s)
redis.call('SET', 'worker:' .. ARGV[1] .. ':hb', ARGV[2], 'EX', ARGV[3]) --@ fails fixed-prefix-id
redis.call('ZADD', 'workers', ARGV[2], ARGV[1]) --@ fails fixed-key
local dead = redis.call('ZRANGEBYSCORE', 'workers', 0, tonumber(ARGV[2]) - 3 * tonumber(ARGV[3])) --@ fails fixed-key
for _, w in ipairs(dead) do
  redis.call('ZREM', 'workers', w) --@ fails fixed-key
  redis.call('DEL', 'worker:' .. w .. ':jobs') --@ fails fixed-prefix-id
end
return #dead
