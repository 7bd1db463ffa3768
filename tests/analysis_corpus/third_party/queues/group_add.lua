--[[
  Adds a job to a per-group queue (a "groups" extension of a job queue).
    KEYS[1] groups set ("{<queue>}:groups")
    KEYS[2] group counters hash
    ARGV[1] group key prefix ("{<queue>}:group:"), ARGV[2] group id, ARGV[3] job id
]]
local groupKey = ARGV[1] .. ARGV[2]
redis.call('RPUSH', groupKey, ARGV[3]) --@ safe argv-prefix
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if redis.call('LLEN', groupKey) == 1 then --@ safe argv-prefix
  redis.call('ZADD', ARGV[1] .. 'ready', 0, ARGV[2]) --@ safe argv-prefix
end
return 1
