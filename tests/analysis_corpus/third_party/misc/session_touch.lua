-- Refreshes a session and records the user's last activity (written for one server).
-- ARGV[1] session id, ARGV[2] user id, ARGV[3] ttl (s), ARGV[4] now
local sess = 'sess:' .. ARGV[1]
if redis.call('EXISTS', sess) == 0 then --@ fails fixed-prefix-id
  return 0
end
redis.call('EXPIRE', sess, ARGV[3]) --@ fails fixed-prefix-id
redis.call('HSET', 'user:' .. ARGV[2] .. ':activity', 'last', ARGV[4]) --@ fails fixed-prefix-id
redis.call('ZADD', 'sessions:active', ARGV[4], ARGV[1]) --@ fails fixed-key
return 1
