--[[
  Invalidates a cache tag: the tag's set lists the cache entries stored under it, by full key.
  Entries are "cache:<hash of the request>" (spread over the cluster on purpose).
    KEYS[1] the tag's set ("tag:<name>")
]]
local entries = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(entries) do
  redis.call('UNLINK', key) --@ fails stored-name
end
redis.call('DEL', KEYS[1])
return #entries
