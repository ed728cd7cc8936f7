-- tick.lua: run the due timers: lapsed reservations (their agents Waiting, the caller
-- Waiting again in its place), ended wrap-ups and delays (the agent Waiting), callbacks due
-- for a retry (Waiting again in their place) and callbacks past their give-up time (gone).
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
--          plus, built from KEYS[1]: the members and agents the timers name, their queues
-- ARGV[3]  most timers to run in this call
-- Returns {queue names worth a dispatch (sorted), number of timers run}.
local due = redis.call('ZRANGEBYSCORE', TIMERS, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
local queues = {}
for _, t in ipairs(due) do
  redis.call('ZREM', TIMERS, t)
  local kind, id = string.sub(t, 1, 1), string.sub(t, 3)
  if kind == 'r' then
    local m = redis.call('HMGET', member_key(id), 'state', 'deadline', 'token', 'agents')
    if m[1] == M_TRYING then
      if tonumber(m[2] or 0) <= NOW then
        for _, a in ipairs(split(m[4])) do release_agent(a, m[3]) end
        queues[return_member(id)] = true
      else
        redis.call('ZADD', TIMERS, m[2], t)
      end
    end
  elseif kind == 'a' then
    local f = redis.call('HMGET', agent_key(id), 'state', 'busy_until')
    if f[1] == IDLE then
      if tonumber(f[2] or 0) <= NOW then
        set_state(id, WAITING)
        local qs = redis.call('ZRANGE', agent_queues_key(id), 0, -1)
        for _, q in ipairs(qs) do queues[q] = true end
      else
        redis.call('ZADD', TIMERS, f[2], t)
      end
    end
  elseif kind == 'c' then
    if redis.call('HGET', member_key(id), 'state') == M_SCHEDULED then
      local q = return_member(id)
      queues[q] = true
      members_count(q)
    end
  elseif kind == 'g' then
    local mk = member_key(id)
    local m = redis.call('HMGET', mk, 'state', 'queue', 'caller', 'joined_ms', 'tries')
    if m[1] == M_WAITING or m[1] == M_SCHEDULED then
      redis.call('ZREM', waiting_key(m[2]), id)
      redis.call('ZREM', TIMERS, 'c|' .. id)
      redis.call('HSET', mk, 'state', M_ABANDONED, 'left_ms', I(NOW), 'cancel', 'TIMEOUT')
      event({'CC-Queue', m[2], 'CC-Action', 'member-queue-end', 'CC-Cause', 'Cancel',
             'CC-Cancel-Reason', 'TIMEOUT', 'CC-Member-Leaving-Time', secs(NOW),
             'CC-Member-Joined-Time', secs(m[4]), 'CC-Member-UUID', id,
             'CC-Member-Session-UUID', id, 'CC-Member-CID-Number', m[3] or '',
             'CC-Callback-Tries', m[5] or '0'})
      members_count(m[2])
    elseif m[1] == M_TRYING then
      -- being offered right now: decided when the offer ends (callback_failed checks the
      -- give-up time itself; a failed ring puts it back in line, to be looked at again here)
      redis.call('ZADD', TIMERS, NOW + 30000, t)
    end
  end
end
local names = {}
for q in pairs(queues) do names[#names + 1] = q end
table.sort(names)
return {names, #due}
