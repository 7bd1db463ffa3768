-- the session hash and a per-session side key; the declared name has no hash tag
local session = KEYS[1]
redis.call('HSET', session, 'seen', ARGV[1])
redis.call('EXPIRE', session .. ':touch', 60)
return 1
