-- leave.lua: the caller left the queue (hung up, overflowed, left by a key): the member ends
-- and every agent reserved or ringing for it is released at once. Idempotent per call uuid.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, call uuid)
--          plus, built from KEYS[1]: its queue's hash and waiting zset, the offer's agents,
--          and keys.acd_abandoned(tenant, queue, caller) when its place is kept for a resume
-- ARGV[3]  call uuid
-- ARGV[4]  mod_callcenter's cancel reason (BREAK_OUT, TIMEOUT, NO_AGENT_TIMEOUT,
--          EXIT_WITH_KEY, NONE)
-- ARGV[5]  which queue counter it adds to: abandoned | overflowed | none; an abandon after
--          less than the queue's short_s of waiting (joined_ms) also adds to abandoned_short
-- Returns the ids of the agents released (empty when nothing was reserved, or when the
-- member had already left).
local u, cancel, counter = ARGV[3], ARGV[4], ARGV[5]
local mk = KEYS[7]
local m = redis.call('HMGET', mk, 'state', 'queue', 'token', 'agents', 'caller', 'joined_ms',
                     PLACE_SCORE, 'jbase', 'agent')
local state, q = m[1], m[2]
if not state then return {} end
local released = {}
if state == M_ANSWERED then
  -- the bridged call goes on until call_ended; the member's queue stay is over
  redis.call('HSET', mk, 'state', M_DONE)
  event({'CC-Queue', q, 'CC-Action', 'member-queue-end', 'CC-Cause', 'Terminated',
         'CC-Agent', m[9] or '', 'CC-Member-Leaving-Time', secs(NOW),
         'CC-Member-Joined-Time', secs(m[6]), 'CC-Member-UUID', u,
         'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', m[5] or ''})
  return released
end
if state ~= M_WAITING and state ~= M_TRYING then return released end
redis.call('ZREM', waiting_key(q), u)
redis.call('ZREM', TIMERS, 'r|' .. u)
if state == M_TRYING then
  for _, a in ipairs(split(m[4])) do
    if release_agent(a, m[3]) then released[#released + 1] = a end
  end
end
redis.call('HSET', mk, 'state', M_ABANDONED, 'left_ms', I(NOW), 'cancel', cancel)
redis.call('HDEL', mk, 'token', 'agents', 'deadline')
local qk = queue_key(q)
roll_qday(qk)
if counter == 'abandoned' or counter == 'overflowed' then
  redis.call('HINCRBY', qk, counter, 1)
end
if counter == 'abandoned' then
  local _, short_ms = sl_thresholds(qk)
  if NOW - tonumber(m[6] or NOW) < short_ms then
    redis.call('HINCRBY', qk, 'abandoned_short', 1)
  end
end
if counter == 'abandoned' and (m[5] or '') ~= '' then
  local qf = redis.call('HMGET', qk, 'resume', 'discard_s')
  local keep_ms = tonumber(qf[2] or 0) * 1000
  if qf[1] == '1' and keep_ms > 0 then
    -- the window is checked against ARGV now by enqueue; PX only cleans up
    redis.call('SET', abandoned_key(q, m[5]), m[7] .. '|' .. m[8] .. '|' .. I(NOW + keep_ms),
               'PX', keep_ms)
  end
end
event({'CC-Queue', q, 'CC-Action', 'member-queue-end', 'CC-Cause', 'Cancel',
       'CC-Cancel-Reason', cancel, 'CC-Member-Leaving-Time', secs(NOW),
       'CC-Member-Joined-Time', secs(m[6]), 'CC-Member-UUID', u, 'CC-Member-Session-UUID', u,
       'CC-Member-CID-Number', m[5] or ''})
members_count(q)
return released
