-- call_takeover.lua: take over a call whose holder stopped working on it (its worker died,
-- or its step failed), only if the record still names that holder.
-- KEYS[1]  call record (hash: state, owner, at, data)
-- ARGV[1]  the holder the taker saw
-- ARGV[2]  worker id taking over
-- ARGV[3]  now, in milliseconds
-- ARGV[4]  record TTL in seconds
-- Returns {1, state, data} TAKEN (resume from that state); {0, state, owner} CHANGED (someone
-- else moved first: leave it); {-1} GONE (the call ended).
local rec = redis.call('HMGET', KEYS[1], 'state', 'owner', 'data')
if not rec[1] then return {-1} end
if (rec[2] or '') ~= ARGV[1] then return {0, rec[1], rec[2] or ''} end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, rec[1], rec[3] or ''}
