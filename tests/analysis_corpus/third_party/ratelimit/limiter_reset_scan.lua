-- Resets every limiter counter (an admin script): SCAN for them and delete them in batches.
-- ARGV[1] cursor
local reply = redis.call('SCAN', ARGV[1], 'MATCH', 'rl:*', 'COUNT', 500)
local found = reply[2]
if #found > 0 then
  redis.call('DEL', unpack(found)) --@ fails unpack-many
end
return reply[1]
