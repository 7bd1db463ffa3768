--[[
  Merges a week of unique-visitor HyperLogLogs. Daily keys are built by the script from the site's
  base key KEYS[1] ("{uv:<site>}") and the day numbers in ARGV.
    KEYS[1] base, ARGV[1..7] day numbers
]]
local days = {}
for i = 1, #ARGV do
  days[i] = KEYS[1] .. ':' .. ARGV[i]
end
redis.call('PFMERGE', KEYS[1] .. ':week', unpack(days)) --@ safe keys-prefix
return redis.call('PFCOUNT', KEYS[1] .. ':week') --@ safe keys-prefix
