-- enqueue.lua: a caller joins a queue (idempotent per call uuid).
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_queue(tenant, queue)
-- KEYS[8]  keys.acd_queue_waiting(tenant, queue)
-- KEYS[9]  keys.acd_member(tenant, call uuid)
-- KEYS[10] keys.acd_abandoned(tenant, queue, caller): "score|wait base|until ms", the place
--          of this caller's abandoned call, if any (read only when ARGV[7] is not empty)
-- ARGV[3]  queue     ARGV[4] call uuid   ARGV[5] node    ARGV[6] priority
-- ARGV[7]  caller number ("" unknown)    ARGV[8] required skills "skill=N,..."
-- ARGV[9]  wait base ms: the join time
-- ARGV[10] rank score (priority first, then the wait base; computed by Python, kept verbatim)
-- ARGV[11] callback number ("" for a live caller)
-- ARGV[12] the call's start ms, ARGV[13] its rank score: used instead of ARGV[9]/ARGV[10]
--          when the queue's time_base_score is system ("" when the start is unknown)
-- KEYS[11] keys.acd_member(tenant, ARGV[14]): the caller who asked for this callback
-- ARGV[14] that caller's uuid ("" for none): a callback takes the place (rank score and wait
--          base) that caller had in this queue. A callback also gets a give-up timer
--          ("g|<uuid>", the queue's cb_give_up_s from now) and lives at least that long;
--          it is listed in keys.acd_queue_callbacks (built from KEYS[1]) until it expires.
-- Returns {code, position (0: not waiting), waiting, resumed (0/1), queue}:
--   JOINED 1, ALREADY 2 (this uuid is already in this queue, nothing changed),
--   UNKNOWN_QUEUE -1, IN_OTHER_QUEUE -3 (live in the queue named in the 5th element).
local q, u, caller = ARGV[3], ARGV[4], ARGV[7]
local qk, wk, mk = KEYS[7], KEYS[8], KEYS[9]
if redis.call('EXISTS', qk) == 0 then return {-1, 0, 0, 0, q} end
local old = redis.call('HMGET', mk, 'queue', 'state')
if old[1] then
  local live = old[2] == M_WAITING or old[2] == M_TRYING or old[2] == M_ANSWERED
    or old[2] == M_SCHEDULED
  if old[1] == q and (live or old[2] == M_DONE) then
    local rank = redis.call('ZRANK', wk, u)
    return {2, rank and rank + 1 or 0, redis.call('ZCARD', wk), 0, q}
  elseif live then
    return {-3, 0, 0, 0, old[1]}
  end
end
local score, jbase, resumed = ARGV[10], ARGV[9], 0
if ARGV[12] ~= '' and redis.call('HGET', qk, 'tb') == 'system' then
  score, jbase = ARGV[13], ARGV[12]
end
if caller ~= '' and redis.call('HGET', qk, 'resume') == '1' then
  local v = redis.call('GET', KEYS[10])
  if v then
    local s, b, until_ms = string.match(v, '^([^|]+)|([^|]+)|(%d+)$')
    if s and NOW < tonumber(until_ms) then score, jbase, resumed = s, b, 1 end
    redis.call('DEL', KEYS[10])
  end
end
if ARGV[11] ~= '' and ARGV[14] ~= '' then
  local o = redis.call('HMGET', KEYS[11], 'queue', PLACE_SCORE, 'jbase')
  if o[1] == q and o[2] then score, jbase = o[2], o[3] or jbase end
end
redis.call('DEL', mk)
redis.call('HSET', mk, 'queue', q, 'state', M_WAITING, 'node', ARGV[5], 'prio', ARGV[6],
           'caller', caller, 'skills', ARGV[8], 'jbase', jbase, PLACE_SCORE, score,
           'callback', ARGV[11], 'joined_ms', I(NOW))
local ttl = MEMBER_TTL_S
if ARGV[11] ~= '' then
  local give_up_s = tonumber(redis.call('HGET', qk, 'cb_give_up_s') or 14400)
  redis.call('HSET', mk, 'give_up_ms', I(NOW + give_up_s * 1000), 'tries', 0)
  redis.call('ZADD', TIMERS, NOW + give_up_s * 1000, 'g|' .. u)
  ttl = ttl + give_up_s
  -- Listed for the KPI collector (callbacks pending) until its member hash expires; the
  -- collector reads each one's state, so the list only has to be a superset, trimmed here.
  local ck = callbacks_key(q)
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', NOW)
  redis.call('ZADD', ck, NOW + ttl * 1000, u)
end
redis.call('EXPIRE', mk, ttl)
redis.call('ZADD', wk, score, u)
roll_qday(qk)
event({'CC-Queue', q, 'CC-Action', resumed == 1 and 'member-queue-resume' or 'member-queue-start',
       'CC-Member-UUID', u, 'CC-Member-Session-UUID', u, 'CC-Member-CID-Number', caller,
       'CC-Member-Joined-Time', secs(NOW)})
members_count(q)
return {1, redis.call('ZRANK', wk, u) + 1, redis.call('ZCARD', wk), resumed, q}
