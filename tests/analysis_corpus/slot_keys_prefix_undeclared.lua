-- same shape as slot_keys_prefix_tagged, but the entry declares no keys: patterns
local meta = KEYS[1]
local id = redis.call('HINCRBY', meta, 'next_id', 1)
redis.call('HSET', meta .. ':job:' .. id, 'payload', ARGV[1])
return id
