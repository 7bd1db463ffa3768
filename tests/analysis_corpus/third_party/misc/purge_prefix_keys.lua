#!lua
--[[
  Purges the cached pages of one site on this node: SCAN for the site's pages, then delete them
  one by one. Pages are "{site:<id>}:page:<path>"; KEYS[1] is the site's index "{site:<id>}:pages".
    ARGV[1] site id, ARGV[2] cursor
]]
local reply = redis.call('SCAN', ARGV[2], 'MATCH', '{site:' .. ARGV[1] .. '}:page:*', 'COUNT', 200)
for _, page in ipairs(reply[2]) do
  redis.call('DEL', page) --@ safe scan-use
  redis.call('SREM', KEYS[1], page)
end
return reply[1]
