-- call_claim.lua: claim a live call for one worker, once. The first claim wins; a later one
-- (a PARK seen again after a reconnect, a sweep meeting a late event) learns who holds it.
-- KEYS[1]  call record (hash: state, owner, at, data)
-- ARGV[1]  worker id claiming the call
-- ARGV[2]  now, in milliseconds (the claimant's wall clock)
-- ARGV[3]  record TTL in seconds (longer than any call; a crashed worker's record expires)
-- ARGV[4]  first state
-- ARGV[5]  the call's data (msgpack)
-- Returns {1} CLAIMED: the caller holds the call now; {0, state, owner, at, data} HELD by a
-- record that exists already (possibly the caller's own).
local rec = redis.call('HMGET', KEYS[1], 'state', 'owner', 'at', 'data')
if rec[1] then
  return {0, rec[1], rec[2] or '', rec[3] or '0', rec[4] or ''}
end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'owner', ARGV[1], 'at', ARGV[2], 'data', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1}
