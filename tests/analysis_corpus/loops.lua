-- every way of walking KEYS is fine
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
end
for i = 1, #KEYS do
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
for i, key in pairs(KEYS) do
  redis.call('PERSIST', key)
end
local picked = {KEYS[1], KEYS[2]}
redis.call('DEL', picked[1])
local collected = {}
for i = 1, #KEYS do
  collected[#collected + 1] = KEYS[i]
end
local count = redis.call('EXISTS', unpack(collected))
redis.call('DEL', unpack(KEYS))
local a, b = KEYS[1], KEYS[2]
redis.call('SUNIONSTORE', b, a)
local ks = KEYS
redis.call('GET', ks[1])
return count
