--[[
  Stores an event in the calendar's day bucket. KEYS[1] is the calendar's base key
  "{cal:<id>}"; day buckets hang off it.
    ARGV[1] event id, ARGV[2] day number, ARGV[3] at (s)
]]
local bucket = string.format('%s:day:%d', KEYS[1], tonumber(ARGV[2]))
redis.call('ZADD', bucket, ARGV[3], ARGV[1]) --@ safe keys-prefix
redis.call('SADD', KEYS[1] .. ':days', ARGV[2]) --@ safe keys-prefix
return 1
