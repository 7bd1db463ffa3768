--[[
  Sets a TTL on a job and, recursively, on its sub-jobs. Sub-job ids are kept in "<job>:kids";
  a sub-job's hash is "task:<id>" (plain names: a sub-job may belong to any workflow).
    KEYS[1] the root job hash, ARGV[1] ttl (s)
]]
local ttl = tonumber(ARGV[1])
local function expireTree(key, childId)
  if childId then
    key = 'task:' .. childId
  end
  redis.call('EXPIRE', key, ttl) --@ fails recursive-helper
  local kids = redis.call('SMEMBERS', key .. ':kids') --@ fails recursive-helper
  for _, kid in ipairs(kids) do
    expireTree(key, kid)
  end
end
expireTree(KEYS[1])
return 1
