--[[
  Runs due one-shot jobs: each job's JSON payload names its state hash, which the client built with
  the scheduler's tag ("{sched:<name>}:state:<job>").
    KEYS[1] the due zset ("{sched:<name>}:due"), ARGV[1] now (ms)
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 50)
for _, raw in ipairs(due) do
  local job = cjson.decode(raw)
  redis.call('HSET', job.stateKey, 'state', 'due', 'at', ARGV[1]) --@ safe stored-name
  redis.call('ZREM', KEYS[1], raw)
end
return #due
