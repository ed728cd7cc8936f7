-- _lib.lua: helpers shared by every ACD script. acd/store.py prepends this file to each
-- script's body before register_script, so every script stays one atomic EVALSHA.
--
-- Common contract of every ACD script (the script-specific part starts at KEYS[7]/ARGV[3]):
-- KEYS[1]  keys.acd_prefix(tenant): agent/queue/member keys the script learns inside Redis
--          (an agent id read from a tier, a member uuid read from a waiting zset) are built
--          from it, so they carry the tenant's {t:<tenant>} tag and stay in this slot
-- KEYS[2]  keys.acd_free(tenant)       set: agents free to offer now
-- KEYS[3]  keys.acd_available(tenant)  set: agents whose status is Available (On Demand)
-- KEYS[4]  keys.acd_timers(tenant)     zset: "r|<uuid>" reservation deadlines, "a|<agent>"
--          ends of wrap-ups and delays, "c|<uuid>" callback retries, "g|<uuid>" callback
--          give-ups; score = due time (ms)
-- KEYS[5]  keys.acd_seq(tenant)        INCR: reservation tokens
-- KEYS[6]  keys.acd_events(tenant)     stream: callcenter::info-style events
-- ARGV[1]  now, ms since the epoch (Python's clock: scripts never read Redis' clock)
-- ARGV[2]  today in the tenant's time zone, YYYYMMDD (daily counters)
local P = KEYS[1]
local FREE = KEYS[2]
local AVAIL = KEYS[3]
local TIMERS = KEYS[4]
local SEQ = KEYS[5]
local EVENTS = KEYS[6]
local NOW = tonumber(ARGV[1])
local DAY = ARGV[2]

local AVAILABLE = 'Available'
local ON_DEMAND = 'Available (On Demand)'
local ON_BREAK = 'On Break'
local LOGGED_OUT = 'Logged Out'
local WAITING = 'Waiting'
local RECEIVING = 'Receiving'
local IN_CALL = 'In a queue call'
local IDLE = 'Idle'
local RESERVED = 'Reserved'
-- member states
local M_WAITING = 'Waiting'
local M_TRYING = 'Trying'
local M_ANSWERED = 'Answered'
local M_ABANDONED = 'Abandoned'
local M_DONE = 'Done'
local M_SCHEDULED = 'Scheduled'  -- a callback waiting for its retry time (timer "c|<uuid>")
local MEMBER_TTL_S = 6 * 3600
local EVENTS_MAXLEN = 100000
local PLACE_SCORE = 'score'  -- member field holding its rank score, kept verbatim

-- Numbers are stored with %d: Lua 5.1's tostring keeps 14 digits only.
local function I(x) return string.format('%d', x) end

local function agent_key(a) return P .. ':agent:' .. a end
local function agent_queues_key(a) return P .. ':agent:' .. a .. ':queues' end
local function queue_key(q) return P .. ':queue:' .. q end
local function tiers_key(q) return P .. ':queue:' .. q .. ':tiers' end
local function waiting_key(q) return P .. ':queue:' .. q .. ':waiting' end
local function abandoned_key(q, caller) return P .. ':queue:' .. q .. ':abandoned:' .. caller end
local function member_key(u) return P .. ':member:' .. u end
-- A queue's free agents in longest-idle order: score = tier level * IDLE_LEVEL_SPAN +
-- idle_since ms (kept by refresh_sets, rebuilt by queue_reindex.lua; see _dispatch.lua).
local function idle_key(q) return P .. ':queue:' .. q .. ':idle' end
local IDLE_LEVEL_SPAN = 10000000000000   -- 10^13 ms, past any idle_since; level <= 100
local function callbacks_key(q) return P .. ':queue:' .. q .. ':callbacks' end

local function event(fields)
  redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', unpack(fields))
end

local function secs(ms) return I(math.floor(tonumber(ms or 0) / 1000)) end

local function is_avail(status) return status == AVAILABLE or status == ON_DEMAND end

-- Keep the free/available sets true to the agent's hash after any change of status, state
-- or registration. Free = Available (On Demand), Waiting, registered not "0".
local function refresh_sets(a)
  local f = redis.call('HMGET', agent_key(a), 'status', 'state', 'reg', 'idle_since')
  if is_avail(f[1]) then redis.call('SADD', AVAIL, a) else redis.call('SREM', AVAIL, a) end
  local free = is_avail(f[1]) and f[2] == WAITING and f[3] ~= '0'
  if free then
    redis.call('SADD', FREE, a)
  else
    redis.call('SREM', FREE, a)
  end
  local qs = redis.call('ZRANGE', agent_queues_key(a), 0, -1, 'WITHSCORES')
  for i = 1, #qs, 2 do
    if free then
      local level = math.floor(tonumber(qs[i + 1]) / 100000)
      redis.call('ZADD', idle_key(qs[i]),
                 I(level * IDLE_LEVEL_SPAN + tonumber(f[4] or 0)), a)
    else
      redis.call('ZREM', idle_key(qs[i]), a)
    end
  end
end

local function set_state(a, state)
  local k = agent_key(a)
  if redis.call('HGET', k, 'state') ~= state then
    redis.call('HSET', k, 'state', state)
    event({'CC-Action', 'agent-state-change', 'CC-Agent', a, 'CC-Agent-State', state})
  end
  refresh_sets(a)
end

local function set_status(a, status)
  local k = agent_key(a)
  if redis.call('HGET', k, 'status') ~= status then
    redis.call('HSET', k, 'status', status)
    event({'CC-Action', 'agent-status-change', 'CC-Agent', a, 'CC-Agent-Status', status})
  end
  refresh_sets(a)
end

-- Today's counters of an agent: a new day (tenant's time zone) starts them at zero.
local function roll_day(k)
  if redis.call('HGET', k, 'day') ~= DAY then
    redis.call('HSET', k, 'day', DAY, 'calls', 0, 'talk_ms', 0, 'noans', 0)
  end
end

-- Today's counters of a queue (the KPI collector, metrics/queues.py, reads them):
-- answered, abandoned (every caller who hung up waiting), overflowed, and for the service
-- level answered_sl (answered within the queue's sl_s), wait_ms (the waits of the answered
-- calls, summed: ASA = wait_ms / answered) and abandoned_short (abandons under short_s).
local function roll_qday(qk)
  if redis.call('HGET', qk, 'qday') ~= DAY then
    redis.call('HSET', qk, 'qday', DAY, 'answered', 0, 'abandoned', 0, 'overflowed', 0,
               'answered_sl', 0, 'wait_ms', 0, 'abandoned_short', 0)
  end
end

-- A queue's service-level thresholds in ms: {sl, short abandon}; the model's defaults when a
-- queue hash predates them (written before the fields existed, not yet synced again).
local function sl_thresholds(qk)
  local f = redis.call('HMGET', qk, 'sl_s', 'short_s')
  return tonumber(f[1] or 20) * 1000, tonumber(f[2] or 5) * 1000
end

local function split(s)
  local t = {}
  if s and s ~= '' then for x in string.gmatch(s, '[^,]+') do t[#t + 1] = x end end
  return t
end

-- SMISMEMBER over any number of ids: Lua's unpack() stops near 8,000 values (LUAI_MAXCSTACK),
-- and a big contact centre has queues with more agents than that.
local UNPACK_CHUNK = 4000
local function smismember_all(key, ids)
  local out = {}
  for first = 1, #ids, UNPACK_CHUNK do
    local last = math.min(first + UNPACK_CHUNK - 1, #ids)
    local part = redis.call('SMISMEMBER', key, unpack(ids, first, last))
    for j = 1, #part do out[first + j - 1] = part[j] end
  end
  return out
end

local function parse_kv(s)
  local t = {}
  if s then for k, v in string.gmatch(s, '([^,=]+)=(%d+)') do t[k] = tonumber(v) end end
  return t
end

-- An agent of an offer goes back to Waiting when it still holds that offer's token.
local function release_agent(a, token)
  local k = agent_key(a)
  local f = redis.call('HMGET', k, 'token', 'state')
  if f[1] == token and (f[2] == RESERVED or f[2] == RECEIVING) then
    redis.call('HDEL', k, 'token', 'member', 'rq')
    set_state(a, WAITING)
    return true
  end
  return false
end

-- The caller is back in its queue with the place (rank score) it had.
local function return_member(u)
  local mk = member_key(u)
  local f = redis.call('HMGET', mk, 'queue', PLACE_SCORE)
  redis.call('HSET', mk, 'state', M_WAITING)
  redis.call('HDEL', mk, 'token', 'agents', 'deadline')
  redis.call('ZADD', waiting_key(f[1]), f[2], u)
  redis.call('ZREM', TIMERS, 'r|' .. u)
  return f[1]
end

local function members_count(q)
  event({'CC-Queue', q, 'CC-Action', 'members-count',
         'CC-Count', I(redis.call('ZCARD', waiting_key(q))), 'CC-Selection', 'Single-Queue'})
end

-- The offer's holder rings agent `a` for member `u` now: Reserved -> Receiving, the time it
-- was called, and the reservation's deadline pushed to the ring timeout + `margin_ms` (never
-- earlier than `deadline`). Returns the new deadline. `mf` is the member's {caller,
-- joined_ms}; `kind` and `contact` the agent's, for the agent-offering event.
local function ring_agent(u, q, a, kind, contact, ring_ms, margin_ms, deadline, mf)
  deadline = math.max(deadline, NOW + ring_ms + margin_ms)
  redis.call('HSET', member_key(u), 'deadline', I(deadline))
  redis.call('ZADD', TIMERS, deadline, 'r|' .. u)
  redis.call('HSET', agent_key(a), 'called_ms', I(NOW))
  event({'CC-Queue', q, 'CC-Action', 'agent-offering', 'CC-Agent', a,
         'CC-Agent-Type', kind or 'callback', 'CC-Agent-Contact', contact or '',
         'CC-Member-UUID', u, 'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', mf[1] or '',
         'CC-Member-Joined-Time', secs(mf[2])})
  set_state(a, RECEIVING)
  return deadline
end

-- An offer's checks: the member still holds `token`, `agent` is one of its agents and still
-- holds it too. Returns the member's fields or nil.
local function offer_live(u, token, a)
  local m = redis.call('HMGET', member_key(u), 'state', 'token', 'agents', 'deadline', 'queue')
  if m[1] ~= M_TRYING or m[2] ~= token then return nil end
  local found = false
  for _, x in ipairs(split(m[3])) do if x == a then found = true end end
  if not found then return nil end
  local f = redis.call('HMGET', agent_key(a), 'token', 'state')
  if f[1] ~= token or (f[2] ~= RESERVED and f[2] ~= RECEIVING) then return nil end
  return m
end
