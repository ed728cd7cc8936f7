-- agent_failed.lua: ringing `agent` for an offer failed with a hangup cause: the agent's
-- delay for that cause (Idle until then), no-answers counted (max_no_answer reached -> the
-- agent's no_answer_status); when no agent of the offer is left, the caller is Waiting
-- again with its place kept.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, call uuid)
-- KEYS[8]  keys.acd_agent(tenant, agent)
-- ARGV[3]  call uuid   ARGV[4] token   ARGV[5] agent
-- ARGV[6]  hangup cause (as the switch reports it)
-- ARGV[7]  the delay's kind: busy | no_answer | reject | not_registered | other
-- Returns FAILED 1 (applied), GONE 0 (nothing to do: that agent no longer holds the offer),
-- MAX_NO_ANSWER 2 (applied, and the agent's status changed for too many no-answers).
local u, token, a, cause, kind = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local mk, ak = KEYS[7], KEYS[8]
local m = offer_live(u, token, a)
if m == nil then return 0 end
local f = redis.call('HMGET', ak, 'busy_s', 'noans_s', 'reject_s', 'notreg_s', 'max_na',
                     'na_status', 'noans_seq', 'called_ms')
local delay_s = 0
if kind == 'busy' then delay_s = tonumber(f[1] or 0)
elseif kind == 'no_answer' then delay_s = tonumber(f[2] or 0)
elseif kind == 'reject' then delay_s = tonumber(f[3] or 0)
elseif kind == 'not_registered' then delay_s = tonumber(f[4] or 0)
end
local code = 1
redis.call('HDEL', ak, 'token', 'member', 'rq')
if kind == 'no_answer' then
  roll_day(ak)
  redis.call('HINCRBY', ak, 'noans', 1)
  local seq = redis.call('HINCRBY', ak, 'noans_seq', 1)
  local max = tonumber(f[5] or 0)
  if max > 0 and seq >= max then
    local st = f[6] or ON_BREAK
    event({'CC-Agent', a, 'CC-Action', 'agent-max-no-answer', 'CC-Agent-No-Answer-Count',
           I(max), 'CC-Agent-No-Answer-Status', st, 'CC-Member-UUID', u,
           'CC-Member-Session-UUID', u})
    set_status(a, st)
    code = 2
  end
end
if delay_s > 0 then
  local until_ms = NOW + delay_s * 1000
  redis.call('HSET', ak, 'busy_until', I(until_ms))
  redis.call('ZADD', TIMERS, until_ms, 'a|' .. a)
  set_state(a, IDLE)
else
  set_state(a, WAITING)
end
local mf = redis.call('HMGET', mk, 'caller', 'joined_ms')
event({'CC-Queue', m[5], 'CC-Action', 'bridge-agent-fail', 'CC-Hangup-Cause', cause,
       'CC-Agent', a, 'CC-Agent-Called-Time', secs(f[8] or NOW),
       'CC-Agent-Aborted-Time', secs(NOW), 'CC-Member-UUID', u, 'CC-Member-Session-UUID', u,
       'CC-Member-CID-Number', mf[1] or '', 'CC-Member-Joined-Time', secs(mf[2])})
local rest = {}
for _, x in ipairs(split(m[3])) do if x ~= a then rest[#rest + 1] = x end end
if #rest == 0 then
  return_member(u)
else
  redis.call('HSET', mk, 'agents', table.concat(rest, ','))
end
return code
