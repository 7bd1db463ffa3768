-- Fixed-window limiter keyed by client id, with fixed key names (written for a single server).
-- ARGV[1] client id, ARGV[2] window start (s), ARGV[3] limit, ARGV[4] window (s)
local key = 'rl:' .. ARGV[1] .. ':' .. ARGV[2]
local count = redis.call('INCR', key) --@ fails fixed-prefix-id
if count == 1 then
  redis.call('EXPIRE', key, ARGV[4]) --@ fails fixed-prefix-id
end
if count > tonumber(ARGV[3]) then
  redis.call('INCR', 'rl:stats:rejected') --@ fails fixed-key
  return 0
end
return 1
