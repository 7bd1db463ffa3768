--[[
  Per-route limiter; KEYS[1] is the route's base key "{route:<name>}" and the counters hang off it.
    ARGV[1] caller id, ARGV[2] limit, ARGV[3] window (s)
]]
local counter = KEYS[1] .. ':' .. ARGV[1]
local n = redis.call('INCR', counter) --@ safe keys-prefix
if n == 1 then
  redis.call('EXPIRE', counter, ARGV[3]) --@ safe keys-prefix
end
redis.call('ZINCRBY', KEYS[1] .. ':top', 1, ARGV[1]) --@ safe keys-prefix
return n <= tonumber(ARGV[2]) and 1 or 0
