-- Drops every expired-owner lock at once with KEYS (an admin script, written for one server).
-- ARGV[1] owner token
local mine = {}
for _, key in ipairs(redis.call('KEYS', 'lock:*')) do
  if redis.call('GET', key) == ARGV[1] then --@ safe scan-use
    mine[#mine + 1] = key
  end
end
if #mine > 0 then
  redis.call('DEL', unpack(mine)) --@ fails unpack-many
end
return #mine
