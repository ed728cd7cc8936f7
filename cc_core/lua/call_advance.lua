-- call_advance.lua: record that the holder of a call reached a new stage.
-- KEYS[1]  call record (hash: stage, owner, at, dnis)
-- ARGV[1]  worker id that ran the step
-- ARGV[2]  now, in milliseconds
-- ARGV[3]  record TTL in seconds (renewed with each stage)
-- ARGV[4]  new stage
-- Returns 1 OK; 0 GONE (no record: the call ended and its record was cleared, and is not
-- created again); -1 NOT_OWNER (another worker took the call over: stop working on it).
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if owner ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'stage', ARGV[4], 'at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
