--[[
  Counts jobs per state. KEYS[1] is the queue prefix key "bull:{<queue>}:" itself.
    ARGV[i] state names: wait, active, delayed, completed, failed...
]]
local counts = {}
for i = 1, #ARGV do
  local key = KEYS[1] .. ARGV[i]
  local kind = redis.call('TYPE', key).ok --@ safe keys-prefix
  if kind == 'list' then
    counts[i] = redis.call('LLEN', key) --@ safe keys-prefix
  elseif kind == 'zset' then
    counts[i] = redis.call('ZCARD', key) --@ safe keys-prefix
  else
    counts[i] = 0
  end
end
return counts
