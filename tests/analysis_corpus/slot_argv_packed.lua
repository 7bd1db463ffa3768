-- ARGV[1] is a msgpack array: {key prefix, item id}; the prefix carries the list's tag
local args = cmsgpack.unpack(ARGV[1])
local item = args[1] .. 'item:' .. args[2]
redis.call('SET', item, 'stocked')
redis.call('LPUSH', KEYS[1], args[2])
return 1
