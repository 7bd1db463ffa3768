-- the same loop with the two inserts swapped: now ARGV values sit where MSETNX reads keys
local args = {}
for i = 1, #KEYS do
  args[#args + 1] = ARGV[i]
  args[#args + 1] = KEYS[i]
end
return redis.call('MSETNX', unpack(args))
