--[[
  Applies a write once per idempotency key. The client passes the resource key and the
  idempotency record's key whole, both under the account's tag "{acct:<id>}:...", with no
  KEYS (numkeys 0).
    ARGV[1] resource key, ARGV[2] idempotency record key, ARGV[3] amount, ARGV[4] ttl (s)
]]
if redis.call('SET', ARGV[2], 1, 'NX', 'EX', ARGV[4]) then --@ fails keyless
  return redis.call('INCRBY', ARGV[1], ARGV[3]) --@ fails keyless
end
return false
