local cmd = ARGV[1]
redis.call(cmd, KEYS[1])
redis.call('get', KEYS[1])
redis.call('NOSUCHCOMMAND', KEYS[1])
redis.call('MULTI')
return 1
