#!lua
-- with a shebang every key must be in the declared slot, not only on this node
redis.call('SET', KEYS[1], ARGV[1])
return redis.call('INCR', 'hits:' .. ARGV[2])
