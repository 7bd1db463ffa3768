-- Marks a Kue-style job complete and moves it between the per-state sets.
-- ARGV[1] job id, ARGV[2] job type, ARGV[3] now
local key = 'q:job:' .. ARGV[1]
local prev = redis.call('HGET', key, 'state') --@ fails fixed-prefix-id
redis.call('ZREM', 'q:jobs:' .. prev, ARGV[1]) --@ fails fixed-prefix-id
redis.call('ZREM', 'q:jobs:' .. ARGV[2] .. ':' .. prev, ARGV[1]) --@ fails fixed-prefix-id
redis.call('HSET', key, 'state', 'complete', 'updated_at', ARGV[3]) --@ fails fixed-prefix-id
redis.call('ZADD', 'q:jobs:complete', ARGV[3], ARGV[1]) --@ fails fixed-key
redis.call('ZADD', 'q:jobs:' .. ARGV[2] .. ':complete', ARGV[3], ARGV[1]) --@ fails fixed-prefix-id
return 1
