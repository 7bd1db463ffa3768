-- member names read from a set: same slot only if the stored names keep the index's tag
local members = redis.call('SMEMBERS', KEYS[1])
for _, name in ipairs(members) do
  redis.call('EXPIRE', name, 60)
end
return #members
