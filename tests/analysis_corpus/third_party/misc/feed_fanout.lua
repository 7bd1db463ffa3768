--[[
  Fans a post out to followers' feeds. Feed keys are stored whole in the author's followers set:
  "feed:{<user>}" (each follower's own tag, so feeds spread over the cluster).
    KEYS[1] the author's followers set, ARGV[1] post id, ARGV[2] score
]]
local feeds = redis.call('SMEMBERS', KEYS[1])
for _, feed in ipairs(feeds) do
  redis.call('ZADD', feed, ARGV[2], ARGV[1]) --@ fails stored-name
  redis.call('ZREMRANGEBYRANK', feed, 0, -501) --@ fails stored-name
end
return #feeds
