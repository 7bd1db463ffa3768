--[[
  Follows a user: both users' sets are named after them, "user:<id>:following" and
  "user:<id>:followers" (no tag: two users are in two slots).
    ARGV[1] follower id, ARGV[2] followed id, ARGV[3] now
]]
redis.call('ZADD', 'user:' .. ARGV[1] .. ':following', ARGV[3], ARGV[2]) --@ fails fixed-prefix-id
redis.call('ZADD', 'user:' .. ARGV[2] .. ':followers', ARGV[3], ARGV[1]) --@ fails fixed-prefix-id
return 1
