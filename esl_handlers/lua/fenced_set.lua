-- fenced_set.lua: write a value only while (owner, token) is the node's current lease, so a
-- paused former owner that wakes up cannot overwrite what its successor wrote.
-- KEYS[1]  lease key
-- KEYS[2]  fence key
-- KEYS[3]  key to write (in the node's slot: esl_handlers.keys.node_scoped)
-- ARGV[1]  owner id
-- ARGV[2]  fencing token the write carries
-- ARGV[3]  value
-- ARGV[4]  expiry in milliseconds, 0 for none
-- Returns 1 written; 0 the lease lapsed; -1 another owner holds it; -2 the token is stale.
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -2 end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[3], ARGV[3])
end
return 1
