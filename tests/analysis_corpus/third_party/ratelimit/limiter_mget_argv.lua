--[[
  Reads several limiter counters at once; the client passes their names whole, one per ARGV.
  Counters are "rl:<client>:<window>" (no hash tag: one counter per client).
]]
local values = redis.call('MGET', unpack(ARGV)) --@ fails unpack-many
local total = 0
for _, v in ipairs(values) do
  total = total + (tonumber(v) or 0)
end
return total
