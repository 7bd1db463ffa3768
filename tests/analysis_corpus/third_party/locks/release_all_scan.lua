-- Releases every lock this owner holds on the node it runs on (an admin script).
-- ARGV[1] owner token, ARGV[2] cursor
local reply = redis.call('SCAN', ARGV[2], 'MATCH', 'lock:*', 'COUNT', 1000)
local released = 0
for _, key in ipairs(reply[2]) do
  if redis.call('GET', key) == ARGV[1] then --@ safe scan-use
    redis.call('DEL', key) --@ safe scan-use
    released = released + 1
  end
end
return {reply[1], released}
