-- valid Lua 5.3, not Lua 5.1 (Redis): integer division
local n = tonumber(ARGV[1]) // 2
return n
