-- call_advance.lua: save the state a call's holder moved it to, with its data.
-- KEYS[1]  call record (hash: state, owner, at, data)
-- ARGV[1]  worker id that ran the step
-- ARGV[2]  now, in milliseconds
-- ARGV[3]  record TTL in seconds (renewed with each save)
-- ARGV[4]  new state
-- ARGV[5]  the call's data (msgpack); empty: unchanged
-- Returns 1 OK; 0 GONE (no record: the call ended and its record was cleared, and is not
-- created again); -1 NOT_OWNER (another worker took the call over: stop working on it).
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if owner ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'at', ARGV[2])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'data', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
