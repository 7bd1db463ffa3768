-- `also` is optional: nil in the first call, a declared key in the second
local function drop(key, also)
  redis.call('DEL', key)
  if also then
    redis.call('DEL', also)
  end
end
drop(KEYS[1])
drop(KEYS[2], KEYS[3])
return 1
