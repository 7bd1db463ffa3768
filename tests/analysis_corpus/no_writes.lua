#!lua flags=no-writes
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], 0)
end
redis.call('ZRANGE', KEYS[2], 0, -1)
return redis.call('INCR', KEYS[1])
