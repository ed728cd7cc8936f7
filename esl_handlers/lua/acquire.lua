-- acquire.lua: take a node's lease when nobody holds it, and issue a new fencing token.
-- KEYS[1]  lease key  (string: owner id, expires after ARGV[2] ms)
-- KEYS[2]  fence key  (string: integer counter, never expires)
-- ARGV[1]  owner id   (unique per worker process incarnation)
-- ARGV[2]  ttl in milliseconds
-- Returns {1, token} when the caller now holds the lease; {0, holder, pttl_ms} when another
-- owner holds it. A holder asking again gets a fresh token: it has stopped acting under the
-- old one (it only asks after deciding it lost the lease), so the old token must die.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, holder, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local token = redis.call('INCR', KEYS[2])
if token == 1 then
  -- The counter is new, or was lost with Redis' data (restart without persistence). Restart
  -- it from Redis' clock in ms so a token issued now is above any issued before the loss.
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
end
return {1, redis.call('GET', KEYS[2])}
