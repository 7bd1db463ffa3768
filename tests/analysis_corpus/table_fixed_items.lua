-- a table built in one go: positions are known, so is each argument
local args = {KEYS[1], ARGV[1], KEYS[2], ARGV[2]}
redis.call('MSET', unpack(args))
local spare = {KEYS[3]}
table.insert(spare, 'audit:' .. ARGV[3])
return redis.call('DEL', unpack(spare))
