local id = ARGV[1]
local profile = string.format('user:%s:profile', id)
redis.call('HGET', profile, 'name')
redis.call('GET', ('user:%s:email'):format(id))
redis.call('SET', table.concat({'user', id, 'seen'}, ':'), 1)
redis.call('SET', KEYS[1], string.format('%d', 3))
return 1
