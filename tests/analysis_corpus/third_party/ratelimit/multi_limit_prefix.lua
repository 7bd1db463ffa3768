--[[
  Checks several named limits of one user at once. The client passes the user's key prefix,
  which carries the user's hash tag: "limits:{user:<id>}:", and no KEYS (numkeys 0).
    ARGV[1] key prefix
    ARGV[2] now (s)
    ARGV[3..] name, limit, window triples
]]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  local key = prefix .. ARGV[i] .. ':' .. math.floor(now / tonumber(ARGV[i + 2]))
  local used = tonumber(redis.call('GET', key) or '0') --@ fails keyless
  if used >= tonumber(ARGV[i + 1]) then
    return ARGV[i]
  end
end
for i = 3, #ARGV, 3 do
  local window = tonumber(ARGV[i + 2])
  local key = prefix .. ARGV[i] .. ':' .. math.floor(now / window)
  redis.call('INCR', key) --@ fails keyless
  redis.call('EXPIRE', key, window) --@ fails keyless
end
return false
