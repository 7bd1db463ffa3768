-- Stores a courier's position and returns the nearest couriers. KEYS[1] the city's geo set.
-- ARGV[1] courier, ARGV[2] lon, ARGV[3] lat, ARGV[4] radius (km)
redis.call('GEOADD', KEYS[1], ARGV[2], ARGV[3], ARGV[1])
return redis.call('GEOSEARCH', KEYS[1], 'FROMMEMBER', ARGV[1], 'BYRADIUS', ARGV[4], 'km', 'ASC', 'COUNT', 10)
