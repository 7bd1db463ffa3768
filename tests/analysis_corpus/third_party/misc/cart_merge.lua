--[[
  Merges a guest cart into the user's cart at login. The client passes the guest cart's key whole;
  at login it re-tags the guest cart with the user's tag: "{user:<id>}:cart:guest".
    KEYS[1] the user's cart ("{user:<id>}:cart"), ARGV[1] the guest cart
]]
local items = redis.call('HGETALL', ARGV[1]) --@ safe argv-whole
for i = 1, #items, 2 do
  redis.call('HINCRBY', KEYS[1], items[i], items[i + 1])
end
redis.call('DEL', ARGV[1]) --@ safe argv-whole
return #items / 2
