-- Moves delayed jobs whose time has come to the wait list.
-- KEYS[1] delayed zset, KEYS[2] wait list, KEYS[3] events stream
-- ARGV[1] queue key prefix ("bull:{<queue>}:"), ARGV[2] now (ms), ARGV[3] batch size
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, jobId in ipairs(due) do
  redis.call('ZREM', KEYS[1], jobId)
  redis.call('LPUSH', KEYS[2], jobId)
  redis.call('HSET', ARGV[1] .. jobId, 'delay', 0) --@ safe argv-prefix
  redis.call('XADD', KEYS[3], '*', 'event', 'waiting', 'jobId', jobId)
end
return #due
