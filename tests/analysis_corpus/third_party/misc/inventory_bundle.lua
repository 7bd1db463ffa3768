--[[
  Reserves stock for a product; a bundle's components (sku -> quantity in "bundle:<sku>") are
  reserved recursively. Stock counters are "stock:<sku>": one per product, spread over the cluster.
    KEYS[1] the reservation hash, ARGV[1] order id, ARGV[2] top product counter key, ARGV[3] qty
]]
local function reserve(stockKey, qty, sku)
  if sku then
    stockKey = 'stock:' .. sku
  end
  local left = redis.call('DECRBY', stockKey, qty) --@ fails recursive-helper
  if left < 0 then
    redis.call('INCRBY', stockKey, qty) --@ fails recursive-helper
    return false
  end
  if sku then
    local parts = redis.call('HGETALL', 'bundle:' .. sku) --@ fails recursive-helper
    for i = 1, #parts, 2 do
      reserve(nil, qty * tonumber(parts[i + 1]), parts[i])
    end
  end
  return true
end
local ok = reserve(ARGV[2], tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], ARGV[1], ok and 'reserved' or 'short')
return ok and 1 or 0
