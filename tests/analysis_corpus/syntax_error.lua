local x = KEYS[1]
if x then
  redis.call('GET', x)
local y = = 2
return y
