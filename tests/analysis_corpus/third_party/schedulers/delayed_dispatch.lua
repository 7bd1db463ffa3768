--[[
  Moves due delayed tasks to their queue. Each task payload (JSON) names its queue by suffix; the
  queues of one scheduler share its tag: the queue list is KEYS[2] .. ':' .. task.queue.
    KEYS[1] delayed zset ("{tasks}:delayed"), KEYS[2] queues prefix ("{tasks}:queue")
    ARGV[1] now (ms), ARGV[2] batch
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, raw in ipairs(due) do
  local task = cjson.decode(raw)
  redis.call('RPUSH', KEYS[2] .. ':' .. task.queue, raw) --@ safe keys-prefix
  redis.call('ZREM', KEYS[1], raw)
end
return #due
