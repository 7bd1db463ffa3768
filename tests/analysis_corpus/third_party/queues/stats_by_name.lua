--[[
  Returns the size of each state list of a queue, building the keys from the queue's name. Queue names
  are braced by this library's rule ("{emails}"), so "bull:{emails}:wait" and friends share a slot.
    KEYS[1] the queue's meta hash ("bull:{emails}:meta")
    ARGV[1] the queue's name ("{emails}")
]]
local base = 'bull:' .. ARGV[1]
local counts = {}
for _, state in ipairs({'wait', 'active', 'delayed'}) do
  counts[#counts + 1] = redis.call('LLEN', base .. ':' .. state) --@ safe argv-name
end
counts[#counts + 1] = redis.call('HGET', KEYS[1], 'paused') and 1 or 0
return counts
