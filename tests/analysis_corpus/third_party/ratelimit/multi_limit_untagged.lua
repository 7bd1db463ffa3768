--[[
  Checks one limit per API route. The client passes the route's counter prefix "api-rl:<route>:"
  (no hash tag: written for one server) and the caller's id.
    ARGV[1] counter prefix, ARGV[2] caller id, ARGV[3] limit, ARGV[4] window (s)
]]
local key = ARGV[1] .. ARGV[2]
local n = redis.call('INCR', key) --@ fails argv-prefix
if n == 1 then
  redis.call('EXPIRE', key, ARGV[4]) --@ fails argv-prefix
end
redis.call('SADD', ARGV[1] .. 'callers', ARGV[2]) --@ fails argv-prefix
return n <= tonumber(ARGV[3]) and 1 or 0
