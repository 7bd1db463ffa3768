-- aliases of redis.call and of the redis table are still calls
local call = redis.call
local r = redis
local key = KEYS[1]
call('GET', key)
call('SET', 'config:global', ARGV[1])
r.call('INCR', ARGV[2])
r.pcall('GET', KEYS[2])
return 1
