--[[
  Trims a stream up to what every consumer group has delivered, and records the trim in a hash
  named after the stream ("<stream>:trims"; streams are "{events:<topic>}").
    KEYS[1] the stream
]]
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local lowest = nil
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  local last = info['last-delivered-id']
  if lowest == nil or last < lowest then lowest = last end
end
if lowest then
  local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', lowest)
  redis.call('HINCRBY', KEYS[1] .. ':trims', 'count', trimmed) --@ safe keys-prefix
  return trimmed
end
return 0
