--[[
  Schedules the next run of recurring jobs. The client passes the scheduler's prefix,
  "rq:{<scheduler>}", and job hashes are "<prefix>:job:<id>".
    KEYS[1] schedule zset
    ARGV[1] prefix, ARGV[2] now (s)
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[2])
for _, id in ipairs(ids) do
  local jobKey = string.format('%s:job:%s', ARGV[1], id)
  local interval = tonumber(redis.call('HGET', jobKey, 'interval')) --@ safe argv-prefix
  redis.call('HSET', jobKey, 'last_run', ARGV[2]) --@ safe argv-prefix
  redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + interval, id)
  redis.call('RPUSH', ARGV[1] .. ':ready', id) --@ safe argv-prefix
end
return #ids
