-- agent_set.lua: an agent's status or registration changes (login, logout, break,
-- available, registered).
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_agent(tenant, agent)
-- ARGV[3]  agent id
-- ARGV[4]  op: login | logout | break | available | registered
-- ARGV[5]  login/available: "1" On Demand; break: the reason; registered: "1" or "0"
-- ARGV[6]  registered: the node whose registrations say so ("": every node, a contact that
--          dials no registration). Per node in the hash's "reg@<node>" fields; "reg" is the
--          sum of them: "1" registered on a node at least, "0" absent from every node known;
--          "regn" "1" says the agent has such fields (dispatch reads them only then).
-- Returns {code, status, state}: OK 1, UNKNOWN_AGENT -1, ALREADY_LOGGED_IN -2 (login while
-- not Logged Out).
local a, op, arg = ARGV[3], ARGV[4], ARGV[5]
local ak = KEYS[7]
if redis.call('EXISTS', ak) == 0 then return {-1, '', ''} end
local f = redis.call('HMGET', ak, 'status', 'state', 'busy_until', 'idle_since')
local function back_to_work()
  -- before the status change: refresh_sets files the agent by it (longest-idle index)
  if tonumber(f[4] or 0) == 0 then redis.call('HSET', ak, 'idle_since', I(NOW)) end
  set_status(a, arg == '1' and ON_DEMAND or AVAILABLE)
  local st = f[2]
  if st ~= IN_CALL and st ~= RECEIVING and st ~= RESERVED then
    if st == IDLE and tonumber(f[3] or 0) > NOW then
      refresh_sets(a)
    else
      set_state(a, WAITING)
    end
  end
end
if op == 'login' then
  if f[1] ~= LOGGED_OUT then return {-2, f[1], f[2]} end
  back_to_work()
elseif op == 'available' then
  back_to_work()
elseif op == 'logout' then
  set_status(a, LOGGED_OUT)
elseif op == 'break' then
  redis.call('HSET', ak, 'break_reason', arg)
  set_status(a, ON_BREAK)
elseif op == 'registered' then
  local node = ARGV[6] or ''
  if node == '' then
    redis.call('HSET', ak, 'reg', arg)
  else
    redis.call('HSET', ak, 'reg@' .. node, arg, 'regn', '1')
    local reg = '0'
    local all = redis.call('HGETALL', ak)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 4) == 'reg@' and all[i + 1] == '1' then reg = '1'; break end
    end
    redis.call('HSET', ak, 'reg', reg)
  end
  refresh_sets(a)
end
local now = redis.call('HMGET', ak, 'status', 'state')
return {1, now[1], now[2]}
