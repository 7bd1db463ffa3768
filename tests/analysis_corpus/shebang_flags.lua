#!lua flags=no-writes,allow-stale,bogus-flag
return redis.call('GET', KEYS[1])
