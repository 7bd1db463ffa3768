-- one removal helper, many callers; only the last call passes a name built from ARGV
local function remove(key)
  return redis.call('UNLINK', key)
end
local function clear_pair(a, b)
  remove(a)
  remove(b)
end
clear_pair(KEYS[1], KEYS[2])
clear_pair(KEYS[3], KEYS[4])
remove(KEYS[5])
remove('tmp:' .. ARGV[1])
return 1
