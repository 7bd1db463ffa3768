--[[
  Counts an event in per-day counters of one metric; KEYS[1] is the metric's base "{m:<name>}".
    ARGV[1] day, ARGV[2] amount
]]
local dayKey = KEYS[1] .. ':' .. ARGV[1]
local total = redis.call('INCRBY', dayKey, ARGV[2]) --@ safe keys-prefix
redis.call('EXPIRE', dayKey, 86400 * 30) --@ safe keys-prefix
redis.call('SADD', KEYS[1] .. ':days', ARGV[1]) --@ safe keys-prefix
return total
