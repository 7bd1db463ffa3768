--[[
  A counting semaphore: holders are kept by the name of their lease key, which the client
  creates as "{sem:<name>}:lease:<holder>" (the semaphore's tag).
    KEYS[1] holders zset ("{sem:<name>}:holders")
    ARGV[1] limit, ARGV[2] the new holder's lease key, ARGV[3] ttl (ms), ARGV[4] now (ms)
]]
local holders = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, lease in ipairs(holders) do
  if redis.call('EXISTS', lease) == 0 then --@ safe stored-name
    redis.call('ZREM', KEYS[1], lease)
  end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', ARGV[2], ARGV[4], 'PX', ARGV[3]) --@ safe argv-whole
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
return 1
