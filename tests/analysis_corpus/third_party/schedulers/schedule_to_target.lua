--[[
  Schedules a payload for later delivery to a target list whose name the caller passes whole. The
  caller gives the target the scheduler's tag, "{sched}:inbox:<user>", as the API requires.
    KEYS[1] the schedule zset ("{sched}:due")
    ARGV[1] target list, ARGV[2] at (ms), ARGV[3] payload
]]
local entry = cjson.encode({target = ARGV[1], payload = ARGV[3]})
redis.call('ZADD', KEYS[1], ARGV[2], entry)
redis.call('HINCRBY', ARGV[1] .. ':meta', 'scheduled', 1) --@ safe argv-prefix
return redis.call('LLEN', ARGV[1]) --@ safe argv-whole
