--[[
  A session store whose keys hang off the user's tagged prefix "app:{user:<id>}:". The client
  passes that prefix; the session index is KEYS[1] ("app:{user:<id>}:sessions").
    ARGV[1] user prefix, ARGV[2] session id, ARGV[3] data, ARGV[4] ttl (s)
]]
local key = ARGV[1] .. 'session:' .. ARGV[2]
redis.call('SET', key, ARGV[3], 'EX', ARGV[4]) --@ safe argv-prefix
redis.call('SADD', KEYS[1], ARGV[2])
local stale = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'session:' .. sid) == 0 then --@ safe argv-prefix
    stale[#stale + 1] = sid
  end
end
if #stale > 0 then
  redis.call('SREM', KEYS[1], unpack(stale))
end
return #stale
