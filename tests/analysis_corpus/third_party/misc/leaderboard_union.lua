--[[
  Builds a weekly leaderboard from daily ones. The client passes the daily boards' names in ARGV;
  all boards of a game carry the game's tag: "lb:{<game>}:day:<n>".
    KEYS[1] destination ("lb:{<game>}:week:<n>")
    ARGV[1] ttl (s), ARGV[2..] daily boards
]]
local days = {}
for i = 2, #ARGV do
  days[#days + 1] = ARGV[i]
end
redis.call('ZUNIONSTORE', KEYS[1], #days, unpack(days)) --@ safe unpack-many
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('ZCARD', KEYS[1])
