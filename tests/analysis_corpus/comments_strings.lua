-- redis.call('DEL', 'not:a:call')
--[[ redis.call('SET', 'also:not', 1)
     redis.call('FLUSHALL') ]]
--[==[ redis.call('SET', ARGV[1], 1) ]==]
local doc = "redis.call('DEL', 'in:a:string')"
local long = [[
redis.call('SET', 'in:a:long:string', 1)
]]
local escaped = 'say \'redis.call("DEL", "x")\''
redis.call('SET', KEYS[1], doc .. long .. escaped)
return redis.call('GET', KEYS[1])
