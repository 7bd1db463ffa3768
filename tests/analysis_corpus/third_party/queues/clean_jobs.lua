--[[
  Removes finished jobs older than a grace period, a page at a time.
    KEYS[1] the set to clean (completed / failed zset)
    ARGV[1] key prefix ("bull:{<queue>}:")
    ARGV[2] max timestamp
    ARGV[3] limit
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[2], 'LIMIT', 0, ARGV[3])
local doomed = {}
for _, id in ipairs(ids) do
  doomed[#doomed + 1] = ARGV[1] .. id
  doomed[#doomed + 1] = ARGV[1] .. id .. ':logs'
end
if #doomed > 0 then
  redis.call('DEL', unpack(doomed)) --@ safe argv-prefix
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return ids
