--[[
  Charges a tenant's quota. The quota's settings come as JSON with the usage counter's key, which the
  client builds with the tenant's tag: {"usage": "{tenant:<id>}:usage", "limit": 1000, "window": 60}.
    KEYS[1] the tenant's quota hash ("{tenant:<id>}:quota"), ARGV[1] settings (JSON), ARGV[2] cost
]]
local cfg = cjson.decode(ARGV[1])
local used = redis.call('INCRBY', cfg.usage, ARGV[2]) --@ safe argv-packed
if used == tonumber(ARGV[2]) then
  redis.call('EXPIRE', cfg.usage, cfg.window) --@ safe argv-packed
end
redis.call('HSET', KEYS[1], 'last', used)
return used <= cfg.limit and 1 or 0
