-- ARGV[1] is the shop's key prefix ("{shop42}:"), ARGV[2] an order id
local prefix, order = ARGV[1], ARGV[2]
redis.call('HSET', prefix .. 'order:' .. order, 'state', 'paid')
redis.call('SADD', KEYS[1], order)
return redis.call('SCARD', KEYS[1])
