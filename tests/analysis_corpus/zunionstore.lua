-- keys follow numkeys; WEIGHTS values are not keys
redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[2], KEYS[3], 'WEIGHTS', ARGV[1], ARGV[2])
redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[2], 'scores:' .. ARGV[3], 'AGGREGATE', 'MAX')
redis.call('ZINTERSTORE', KEYS[1], 1, KEYS[2], 'WEIGHTS', 3)
return redis.call('ZCARD', KEYS[1])
