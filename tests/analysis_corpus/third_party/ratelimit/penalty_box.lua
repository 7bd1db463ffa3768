--[[
  Puts abusive clients in a penalty box. The box is a global sorted set shared by all clients;
  each client's strike counter is keyed by its id.
    KEYS[1] the client's strike counter ("strikes:<client>")
    ARGV[1] client id, ARGV[2] now (s), ARGV[3] strikes before the box
]]
local strikes = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 3600)
if strikes >= tonumber(ARGV[3]) then
  redis.call('ZADD', 'penalty:box', ARGV[2], ARGV[1]) --@ fails fixed-key
  redis.call('PUBLISH', 'penalty:events', ARGV[1])
end
return strikes
