-- the same script without argv: in the catalog: the prefix may carry any tag, or none
local prefix, order = ARGV[1], ARGV[2]
redis.call('HSET', prefix .. 'order:' .. order, 'state', 'paid')
redis.call('SADD', KEYS[1], order)
return redis.call('SCARD', KEYS[1])
