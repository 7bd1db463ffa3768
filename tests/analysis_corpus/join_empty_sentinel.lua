-- "" marks "no archive list": it is tested before any call uses it
local archive = ''
if ARGV[1] == 'keep' then
  archive = KEYS[2]
end
local item = redis.call('LPOP', KEYS[1])
if item and archive ~= '' then
  redis.call('RPUSH', archive, item)
end
return item
