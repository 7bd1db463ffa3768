-- every name the pattern can match carries KEYS[1]'s tag: they all live in this slot
local page = redis.call('SCAN', 0, 'MATCH', KEYS[1] .. ':*', 'COUNT', 1000)
return #page[2]
