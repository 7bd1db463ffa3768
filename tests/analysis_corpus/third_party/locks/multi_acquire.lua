-- Acquires several locks at once (the client tags them alike: "{<group>}:lock:<name>").
-- KEYS: the locks. ARGV[1] token, ARGV[2] ttl (ms)
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
