-- KEYS[i] gets ARGV[i]: the table alternates key, value, key, value
local pairs_list = {}
for i = 1, #KEYS do
  table.insert(pairs_list, KEYS[i])
  table.insert(pairs_list, ARGV[i])
end
return redis.call('MSETNX', unpack(pairs_list))
