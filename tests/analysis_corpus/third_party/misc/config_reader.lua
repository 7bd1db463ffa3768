-- Reads a feature flag for a tenant, falling back to the global default (a fixed key).
-- KEYS[1] the tenant's flags hash. ARGV[1] flag name
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  return v
end
return redis.call('HGET', 'flags:default', ARGV[1]) --@ fails fixed-key
