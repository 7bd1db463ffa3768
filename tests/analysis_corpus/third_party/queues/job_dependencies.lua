--[[
  Completes a child job and, when it was the parent's last pending child, moves the parent to wait.
  Job keys are stored whole ("bull:{<queue>}:<id>"): a flow keeps parent and children in one queue.
    KEYS[1] the child's job hash
    KEYS[2] the queue's wait list
    ARGV[1] result of the child (JSON)
]]
local rcall = redis.call
local parentKey = rcall('HGET', KEYS[1], 'parentKey')
if not parentKey then
  return 0
end
rcall('SREM', parentKey .. ':dependencies', KEYS[1]) --@ safe stored-name
rcall('HSET', parentKey .. ':processed', KEYS[1], ARGV[1]) --@ safe stored-name
if rcall('SCARD', parentKey .. ':dependencies') == 0 then --@ safe stored-name
  local parentId = rcall('HGET', parentKey, 'id') --@ safe stored-name
  rcall('LPUSH', KEYS[2], parentId)
end
return 1
