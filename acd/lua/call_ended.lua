-- call_ended.lua: a bridged queue call ended: the agent's counters for today, Idle for its
-- wrap-up (then Waiting via tick), or Waiting at once; an On Demand agent goes On Break.
-- Idempotent: only an agent In a queue call with this caller is changed.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_agent(tenant, agent)
-- KEYS[8]  keys.acd_member(tenant, call uuid)
--          plus, built from KEYS[1]: the member's queue hash
-- ARGV[3]  call uuid   ARGV[4] agent   ARGV[5] talk time ms
-- Returns ENDED 1, GONE 0 (that agent is not in a call with this caller: nothing changed).
local u, a, talk = ARGV[3], ARGV[4], tonumber(ARGV[5])
local ak, mk = KEYS[7], KEYS[8]
local f = redis.call('HMGET', ak, 'state', 'member', 'wrap_s', 'status', 'answered_ms')
if f[1] ~= IN_CALL or f[2] ~= u then return 0 end
roll_day(ak)
redis.call('HINCRBY', ak, 'calls', 1)
redis.call('HINCRBY', ak, 'talk_ms', talk)
redis.call('HDEL', ak, 'token', 'member', 'rq')
redis.call('HSET', ak, 'idle_since', I(NOW))
local wrap_ms = tonumber(f[3] or 0) * 1000
if f[4] == ON_DEMAND then set_status(a, ON_BREAK) end
if wrap_ms > 0 then
  redis.call('HSET', ak, 'busy_until', I(NOW + wrap_ms))
  redis.call('ZADD', TIMERS, NOW + wrap_ms, 'a|' .. a)
  set_state(a, IDLE)
else
  set_state(a, WAITING)
end
local m = redis.call('HMGET', mk, 'state', 'queue', 'caller', 'joined_ms')
local q = m[2]
if q then
  local qk = queue_key(q)
  -- handle time (talk + wrap-up): a moving average for the estimated wait
  local x = talk + wrap_ms
  local qf = redis.call('HMGET', qk, 'aht_ms', 'aht_n')
  local n = tonumber(qf[2] or 0)
  local avg = n == 0 and x or tonumber(qf[1]) + (x - tonumber(qf[1])) * 0.2
  redis.call('HSET', qk, 'aht_ms', I(math.floor(avg + 0.5)), 'aht_n', I(n + 1))
  event({'CC-Queue', q, 'CC-Action', 'bridge-agent-end', 'CC-Agent', a,
         'CC-Agent-Bridged', 'true', 'CC-Agent-Answered-Time', secs(f[5]),
         'CC-Bridge-Terminated-Time', secs(NOW), 'CC-Member-Joined-Time', secs(m[4]),
         'CC-Member-UUID', u, 'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', m[3] or ''})
  if m[1] == M_ANSWERED then
    redis.call('HSET', mk, 'state', M_DONE)
    event({'CC-Queue', q, 'CC-Action', 'member-queue-end', 'CC-Cause', 'Terminated',
           'CC-Agent', a, 'CC-Member-Leaving-Time', secs(NOW),
           'CC-Member-Joined-Time', secs(m[4]), 'CC-Member-UUID', u,
           'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', m[3] or ''})
  end
end
return 1
