--[[
  Same as a cache-tag flush, in one command: entries are "cache:<hash of the request>".
    KEYS[1] the tag's set
]]
local entries = redis.call('SMEMBERS', KEYS[1])
if #entries > 0 then
  redis.call('DEL', unpack(entries)) --@ fails unpack-many
end
redis.call('DEL', KEYS[1])
return #entries
