--[[
  Extends every lock of an owner. The owner's locks are listed in a set under KEYS[1]; lock keys
  are "lock:<resource>" (one per resource, no shared tag).
    KEYS[1] the owner's set of lock keys, ARGV[1] owner token, ARGV[2] ttl (ms)
]]
local locks = redis.call('SMEMBERS', KEYS[1])
local extended = 0
for _, lockKey in ipairs(locks) do
  if redis.call('GET', lockKey) == ARGV[1] then --@ fails stored-name
    redis.call('PEXPIRE', lockKey, ARGV[2]) --@ fails stored-name
    extended = extended + 1
  else
    redis.call('SREM', KEYS[1], lockKey)
  end
end
return extended
