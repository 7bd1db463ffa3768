-- deletes every name matching ARGV[1]: in a cluster only this node's names are seen
local cursor = '0'
local removed = 0
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 100)
  cursor = page[1]
  for _, name in ipairs(page[2]) do
    removed = removed + redis.call('DEL', name)
  end
until cursor == '0'
return removed
