-- call_claim.lua: claim a live call for one worker, once. The first claim wins; a later one
-- (a PARK seen again after a reconnect, a sweep meeting a late event) learns who holds it.
-- KEYS[1]  call record (hash: stage, owner, at, dnis)
-- ARGV[1]  worker id claiming the call
-- ARGV[2]  now, in milliseconds (the claimant's wall clock)
-- ARGV[3]  record TTL in seconds (longer than any call; a crashed worker's record expires)
-- ARGV[4]  first stage
-- ARGV[5]  dialled 400 number
-- Returns {1} CLAIMED: the caller holds the call now; {0, stage, owner, at} HELD by a record
-- that exists already (possibly the caller's own).
local rec = redis.call('HMGET', KEYS[1], 'stage', 'owner', 'at')
if rec[1] then
  return {0, rec[1], rec[2] or '', rec[3] or '0'}
end
redis.call('HSET', KEYS[1], 'stage', ARGV[4], 'owner', ARGV[1], 'at', ARGV[2], 'dnis', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1}
