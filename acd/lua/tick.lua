-- tick.lua: run the due timers: lapsed reservations (their agents Waiting, the caller
-- Waiting again in its place), ended wrap-ups and delays (the agent Waiting).
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
  end
end
local names = {}
for q in pairs(queues) do names[#names + 1] = q end
table.sort(names)
return {names, #due}
