-- A named lock whose key the script builds from the resource name (written for one server).
-- ARGV[1] resource name, ARGV[2] owner, ARGV[3] ttl (ms)
local key = 'lock:' .. ARGV[1]
local ok = redis.call('SET', key, ARGV[2], 'NX', 'PX', ARGV[3]) --@ fails fixed-prefix-id
if ok then
  redis.call('SADD', 'locks:held', ARGV[1]) --@ fails fixed-key
  return 1
end
return 0
