--[[
  A limiter whose caller passes only the tenant id; the script wraps it in braces so all of a
  tenant's counters share a slot.
    KEYS[1] a routing key of the tenant ("{<tenant>}"), ARGV[1] tenant id, ARGV[2] limit
]]
local base = '{' .. ARGV[1] .. '}'
local used = redis.call('INCR', base .. ':used') --@ safe argv-prefix
redis.call('EXPIRE', base .. ':used', 60) --@ safe argv-prefix
if used > tonumber(ARGV[2]) then
  redis.call('SADD', base .. ':throttled-at', KEYS[1]) --@ safe argv-prefix
  return 0
end
return 1
