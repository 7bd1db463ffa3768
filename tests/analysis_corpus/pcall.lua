local ok, value = pcall(redis.call, 'GET', KEYS[1])
local ok2 = pcall(redis.call, 'GET', ARGV[1])
local ok3 = redis.pcall('DEL', 'session:' .. ARGV[2])
if not ok then
  return redis.error_reply(tostring(value))
end
return {ok2, ok3}
