--[[
keep_manifest.lua -- the leader keeps `manifest.key` equal to the catalog's manifest, like a
script is kept on a node: a quick look every interval, a write only when the key is wrong; fenced by
the leader lease when there is one (Kleppmann's paused leader: the server checks the owner token,
not the leader's own clock).

The quick look is the key's length: STRLEN is O(1), while reading the value costs ~1.4 ms and its
SHA1 ~2.4 ms per MB on the server, so the SHA1 is compared only when ARGV[3] is given (every
FULL_CHECK_EVERY-th look and after a write).

KEYS:
  KEYS[1]  the manifest key
  KEYS[2]  optional: the lease key (same slot), which must hold ARGV[1]
ARGV:
  ARGV[1]  owner token ("" without a lease)
  ARGV[2]  the manifest's length in bytes
  ARGV[3]  its SHA1, or "" for the quick look
  ARGV[4]  optional: the manifest, written if the key does not hold it
Returns:
  1  the key holds it
  2  written now
  0  it does not, and no text was sent
Error replies (first word is the stable code); nothing is written when one is returned:
  FENCED   the lease key does not hold ARGV[1]: another instance leads, or our lease lapsed
]]
if #KEYS == 2 and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED the leader lease is not held by this instance')
end
local holds = false
local size = redis.pcall('STRLEN', KEYS[1])
if type(size) == 'number' and size == tonumber(ARGV[2]) then
  holds = ARGV[3] == '' or redis.sha1hex(redis.call('GET', KEYS[1])) == ARGV[3]
end
if holds then
  return 1
end
if ARGV[4] == nil then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4])
return 2
