--[[
  Delivers due entries written by schedule_to_target: each JSON entry names its target list, which
  carries the scheduler's tag ("{sched}:inbox:<user>").
    KEYS[1] the schedule zset ("{sched}:due"), ARGV[1] now (ms)
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, raw in ipairs(due) do
  local entry = cjson.decode(raw)
  redis.call('RPUSH', entry.target, entry.payload) --@ safe stored-name
  redis.call('ZREM', KEYS[1], raw)
end
return #due
