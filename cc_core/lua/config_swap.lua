-- config_swap.lua: make a new tenant-config directory the one readers see, in one step, and
-- only if nobody applied another version since the caller read the directory it diffed against.
-- KEYS[1]  directory (msgpack; see cc_core/keys.py)
-- KEYS[2]  directory version (the same number alone, polled by workers)
-- ARGV[1]  version the caller based its change on ('0': no directory yet)
-- ARGV[2]  new version
-- ARGV[3]  new directory (msgpack)
-- ARGV[4]  channel to publish the new version on
-- Returns {1} swapped; {0, current version} another apply landed first (nothing written).
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[1] then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return {1}
