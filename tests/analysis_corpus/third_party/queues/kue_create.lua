-- Creates a job, Kue-style: fixed global key names, one server assumed.
-- ARGV[1] job type, ARGV[2] priority, ARGV[3] data (JSON), ARGV[4] now
local id = redis.call('INCR', 'q:ids') --@ fails fixed-key
local key = 'q:job:' .. id
redis.call('HSET', key, 'type', ARGV[1], 'data', ARGV[3], 'created_at', ARGV[4], 'state', 'inactive') --@ fails fixed-prefix-id
redis.call('ZADD', 'q:jobs', ARGV[2], id) --@ fails fixed-key
redis.call('ZADD', 'q:jobs:' .. ARGV[1] .. ':inactive', ARGV[2], id) --@ fails fixed-prefix-id
redis.call('SADD', 'q:job:types', ARGV[1]) --@ fails fixed-key
redis.call('LPUSH', 'q:' .. ARGV[1] .. ':jobs', 1) --@ fails fixed-prefix-id
return id
