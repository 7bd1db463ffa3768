-- one branch swaps the declared key for a fixed global counter: that branch is the problem
local counter = KEYS[1]
if ARGV[1] == 'global' then
  counter = 'stats:global'
end
return redis.call('INCR', counter)
