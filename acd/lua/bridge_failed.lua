-- bridge_failed.lua: `agent` answered and won the offer, but the bridge to the caller failed
-- (the agent's leg was already gone: a phone that answers and hangs up at once). As
-- mod_callcenter does ("Failed to bridge, agent has no session"), the caller waits again
-- with the place it had; the agent's answered call ends without a bridge: wrap-up (Idle,
-- then Waiting via tick: a phone that keeps doing it is not rung in a tight loop) or Waiting
-- at once; not counted as a call taken, and an On Demand agent stays available, as
-- mod_callcenter leaves an agent it did not bridge.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, call uuid)
-- KEYS[8]  keys.acd_agent(tenant, agent)
-- KEYS[9]  keys.acd_queue(tenant, queue)
-- ARGV[3]  call uuid   ARGV[4] token   ARGV[5] agent
-- Returns WAITING 1 (the caller waits again: dispatch its queue), GONE 0 (not this offer's
-- answered caller and agent any more: nothing changed).
local u, token, a = ARGV[3], ARGV[4], ARGV[5]
local mk, ak, qk = KEYS[7], KEYS[8], KEYS[9]
local m = redis.call('HMGET', mk, 'state', 'token', 'agent', 'queue', 'caller', 'joined_ms')
if m[1] ~= M_ANSWERED or m[2] ~= token or m[3] ~= a then return 0 end
local f = redis.call('HMGET', ak, 'state', 'member', 'wrap_s', 'answered_ms')
if f[1] == IN_CALL and f[2] == u then
  redis.call('HDEL', ak, 'token', 'member', 'rq')
  redis.call('HSET', ak, 'idle_since', I(NOW))
  local wrap_ms = tonumber(f[3] or 0) * 1000
  if wrap_ms > 0 then
    redis.call('HSET', ak, 'busy_until', I(NOW + wrap_ms))
    redis.call('ZADD', TIMERS, NOW + wrap_ms, 'a|' .. a)
    set_state(a, IDLE)
  else
    set_state(a, WAITING)
  end
end
-- answered.lua counted the call as answered by the queue today: it was not.
if redis.call('HGET', qk, 'qday') == DAY and tonumber(redis.call('HGET', qk, 'answered') or 0) > 0 then
  redis.call('HINCRBY', qk, 'answered', -1)
end
event({'CC-Queue', m[4], 'CC-Action', 'bridge-agent-end', 'CC-Agent', a,
       'CC-Agent-Bridged', 'false', 'CC-Agent-Answered-Time', secs(f[4]),
       'CC-Bridge-Terminated-Time', secs(NOW), 'CC-Member-Joined-Time', secs(m[6]),
       'CC-Member-UUID', u, 'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', m[5] or ''})
redis.call('HDEL', mk, 'agent', 'answered_ms')
local q = return_member(u)
members_count(q)
return 1
