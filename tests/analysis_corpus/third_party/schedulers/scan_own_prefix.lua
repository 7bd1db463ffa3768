--[[
  Drops every timer of one schedule, found by SCAN on the schedule's own prefix: KEYS[1] is the
  schedule's base "{sched:<name>}" and its timers are "{sched:<name>}:timer:<id>" (one tag).
    ARGV[1] cursor
]]
local reply = redis.call('SCAN', ARGV[1], 'MATCH', KEYS[1] .. ':timer:*', 'COUNT', 100)
if #reply[2] > 0 then
  redis.call('DEL', unpack(reply[2])) --@ safe unpack-many
end
return reply[1]
