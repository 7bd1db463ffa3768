limit = tonumber(ARGV[1])
local count = 0
function helper(k) return redis.call('GET', k) end
count = count + 1
local t = {}
t.x = 1
return undefined_thing
