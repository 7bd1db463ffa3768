-- KEYS[1] is "{<board>}:posts:list"; cutting ":list" keeps the tag, so the counter shares the slot
local base = KEYS[1]:sub(1, -6)
redis.call('INCR', base .. ':count')
return redis.call('LLEN', KEYS[1])
