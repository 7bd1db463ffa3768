-- KEYS[1] is the queue's meta hash, KEYS[2] its job list; job hashes share the queue's tag
local meta, jobs = KEYS[1], KEYS[2]
local id = redis.call('HINCRBY', meta, 'next_id', 1)
local job = meta .. ':job:' .. id
redis.call('HSET', job, 'payload', ARGV[1])
redis.call('RPUSH', jobs, id)
return id
