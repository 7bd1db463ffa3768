--[[
  Removes a job and all of its children (flows). Children are stored as whole job keys in the
  parent's ':dependencies' set; a flow lives in one queue, so they carry the queue's hash tag.
    KEYS[1] the job hash ("bull:{<queue>}:<id>")
    KEYS[2] the queue's wait list
]]
local rcall = redis.call

local function removeJob(jobKey, parentKey)
  if parentKey then
    rcall('SREM', parentKey .. ':dependencies', jobKey) --@ safe stored-name
  end
  local children = rcall('SMEMBERS', jobKey .. ':dependencies') --@ safe keys-prefix
  for _, child in ipairs(children) do
    removeJob(child, jobKey)
  end
  local id = rcall('HGET', jobKey, 'id') --@ safe stored-name
  if id then
    rcall('LREM', KEYS[2], 0, id)
  end
  rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies') --@ safe stored-name
end

removeJob(KEYS[1])
return 1
