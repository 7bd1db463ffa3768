-- Archives old report keys on this node by renaming each "report:<id>" to "report:<id>:old".
-- ARGV[1] cursor
local reply = redis.call('SCAN', ARGV[1], 'MATCH', 'report:*', 'COUNT', 100)
for _, name in ipairs(reply[2]) do
  redis.call('RENAME', name, name .. ':old') --@ fails scan-use
end
return reply[1]
