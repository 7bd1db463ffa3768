-- a set of keys, then each member used as a key: works on one node only
local members = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for _, member in ipairs(members) do
  deleted = deleted + redis.call('DEL', member)
end
local first = redis.call('LINDEX', KEYS[2], 0)
if first then
  redis.call('EXPIRE', first, 60)
end
redis.call('DEL', unpack(redis.call('SMEMBERS', KEYS[3])))
return deleted
