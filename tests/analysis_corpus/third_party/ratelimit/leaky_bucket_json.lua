--[[
  Leaky bucket whose keys come in a JSON config. The client tags both keys with the bucket's
  name: {"level": "lb:{<name>}:level", "stamp": "lb:{<name>}:stamp", "rate": .., "size": ..};
  the call passes no KEYS (numkeys 0).
    ARGV[1] config (JSON), ARGV[2] now (ms)
]]
local cfg = cjson.decode(ARGV[1])
local now = tonumber(ARGV[2])
local level = tonumber(redis.call('GET', cfg.level) or '0') --@ fails keyless
local stamp = tonumber(redis.call('GET', cfg.stamp) or ARGV[2]) --@ fails keyless
level = math.max(0, level - (now - stamp) * cfg.rate / 1000)
if level + 1 > cfg.size then
  return 0
end
redis.call('SET', cfg.level, level + 1, 'PX', 60000) --@ fails keyless
redis.call('SET', cfg.stamp, now, 'PX', 60000) --@ fails keyless
return 1
