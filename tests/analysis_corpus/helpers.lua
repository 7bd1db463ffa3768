local function bump(key, by)
  return redis.call('INCRBY', key, by)
end
local function never_called(key)
  return redis.call('GET', key)
end
local total = bump(KEYS[1], ARGV[1])
total = total + bump(ARGV[2], 1)
local key = KEYS[2]
key = key .. ':shadow'
redis.call('SET', key, total)
return total
