-- answered.lua: `agent` answered first: the agent is In a queue call, the caller Answered,
-- every other agent of the offer released at once (no penalty). The queue's counters of
-- today: answered, and for the service level the wait summed and answered_sl.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, call uuid)
-- KEYS[8]  keys.acd_agent(tenant, agent)
-- KEYS[9]  keys.acd_queue(tenant, queue)
--          plus, built from KEYS[1]: the other agents of the offer
-- ARGV[3]  call uuid   ARGV[4] token   ARGV[5] agent
-- Returns WON 1 (bridge them), AGAIN 2 (this agent already won this offer: nothing changed),
-- LOST 0 (too late: lapsed, caller gone, or another agent won: hang this agent's leg up).
local u, token, a = ARGV[3], ARGV[4], ARGV[5]
local mk, ak, qk = KEYS[7], KEYS[8], KEYS[9]
local cur = redis.call('HMGET', mk, 'state', 'token', 'agent')
if (cur[1] == M_ANSWERED or cur[1] == M_DONE) and cur[2] == token and cur[3] == a then
  return 2
end
local m = offer_live(u, token, a)
if m == nil or tonumber(m[4]) <= NOW then return 0 end
for _, x in ipairs(split(m[3])) do
  if x ~= a then release_agent(x, token) end
end
redis.call('HSET', ak, 'noans_seq', 0, 'answered_ms', I(NOW))
set_state(a, IN_CALL)
redis.call('HSET', mk, 'state', M_ANSWERED, 'agent', a, 'agents', a, 'answered_ms', I(NOW))
redis.call('HDEL', mk, 'deadline')
redis.call('ZREM', TIMERS, 'r|' .. u)
roll_qday(qk)
redis.call('HINCRBY', qk, 'answered', 1)
local mf = redis.call('HMGET', mk, 'caller', 'joined_ms')
-- The wait is this stay in the queue (joined_ms), not the rank's base (jbase: a resumed
-- place or the call's start), so ASA and the service level mean what the caller lived.
local wait = math.max(0, NOW - tonumber(mf[2] or NOW))
local sl_ms = sl_thresholds(qk)
redis.call('HINCRBY', qk, 'wait_ms', wait)
if wait <= sl_ms then redis.call('HINCRBY', qk, 'answered_sl', 1) end
local called = redis.call('HGET', ak, 'called_ms') or I(NOW)
event({'CC-Queue', m[5], 'CC-Action', 'bridge-agent-start', 'CC-Agent', a,
       'CC-Agent-Called-Time', secs(called), 'CC-Agent-Answered-Time', secs(NOW),
       'CC-Member-Joined-Time', secs(mf[2]), 'CC-Member-UUID', u,
       'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', mf[1] or ''})
return 1
