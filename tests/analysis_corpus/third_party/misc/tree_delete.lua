--[[
  Deletes a folder and its subfolders. A folder's children are stored whole in "<folder>:children";
  every folder of a drive carries the drive's tag: "drive:{<id>}:folder:<path>".
    KEYS[1] the folder
]]
local function drop(folder, parent)
  for _, child in ipairs(redis.call('SMEMBERS', folder .. ':children')) do --@ safe keys-prefix
    drop(child, folder)
  end
  if parent then
    redis.call('SREM', parent .. ':children', folder) --@ safe stored-name
  end
  redis.call('DEL', folder, folder .. ':children') --@ safe stored-name
end
drop(KEYS[1])
return 1
