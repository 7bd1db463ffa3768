#!lua
-- KEYS[1] from account, KEYS[2] to account, KEYS[3] journal; ARGV[1] amount, ARGV[2] id
local from, to, journal = KEYS[1], KEYS[2], KEYS[3]
local amount = tonumber(ARGV[1])
if not amount or amount <= 0 then
  return redis.error_reply('INVALID_AMOUNT ' .. tostring(ARGV[1]))
end
local balance = tonumber(redis.call('HGET', from, 'balance') or '0')
if balance < amount then
  return redis.error_reply('INSUFFICIENT_FUNDS')
end
redis.call('HINCRBY', from, 'balance', -amount)
redis.call('HINCRBY', to, 'balance', amount)
redis.call('XADD', journal, 'MAXLEN', '~', 1000, '*', 'id', ARGV[2], 'amount', amount)
return {balance - amount, redis.call('HGET', to, 'balance')}
