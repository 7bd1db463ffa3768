#!lua
-- KEYS lists this node's names; with a shebang, deleting one in another slot fails
local names = redis.call('KEYS', ARGV[1])
for _, name in ipairs(names) do
  redis.call('DEL', name)
end
return #names
