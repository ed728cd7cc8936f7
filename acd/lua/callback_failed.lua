-- callback_failed.lua: the agent took a queued callback but the caller did not answer (or
-- the call to them failed): another try after the queue's cb_retry_s, in the same place,
-- or given up when the tries are used or the retry would fall past the give-up time.
-- Idempotent per attempt: the agent leg's uuid is remembered.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, callback uuid)
--          plus, built from KEYS[1]: its queue's hash
-- ARGV[3]  callback uuid   ARGV[4] the agent leg's uuid (the attempt)
-- Returns {code, tries, due ms}: RETRY 1 (Scheduled, due then), GAVE_UP 2, IGNORED 0 (not a
-- callback, not answered by an agent, or this attempt was already counted).
local u, leg = ARGV[3], ARGV[4]
local mk = KEYS[7]
local m = redis.call('HMGET', mk, 'state', 'queue', 'callback', 'tries', 'give_up_ms',
                     'cb_leg', 'caller', 'joined_ms')
if not m[1] or (m[3] or '') == '' or m[6] == leg then return {0, 0, 0} end
if m[1] ~= M_ANSWERED and m[1] ~= M_DONE then return {0, 0, 0} end
local q = m[2]
local qf = redis.call('HMGET', queue_key(q), 'cb_retries', 'cb_retry_s')
local tries = tonumber(m[4] or 0) + 1
local due = NOW + tonumber(qf[2] or 60) * 1000
redis.call('HSET', mk, 'tries', I(tries), 'cb_leg', leg)
redis.call('HDEL', mk, 'token', 'agents', 'deadline', 'agent')
if tries > tonumber(qf[1] or 0) or due >= tonumber(m[5] or 0) then
  redis.call('HSET', mk, 'state', M_ABANDONED, 'left_ms', I(NOW), 'cancel', 'NONE')
  redis.call('ZREM', TIMERS, 'g|' .. u)
  event({'CC-Queue', q, 'CC-Action', 'member-queue-end', 'CC-Cause', 'Cancel',
         'CC-Cancel-Reason', 'NONE', 'CC-Member-Leaving-Time', secs(NOW),
         'CC-Member-Joined-Time', secs(m[8]), 'CC-Member-UUID', u,
         'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', m[7] or '',
         'CC-Callback-Tries', I(tries)})
  return {2, tries, 0}
end
redis.call('HSET', mk, 'state', M_SCHEDULED)
redis.call('ZADD', TIMERS, due, 'c|' .. u)
return {1, tries, due}
