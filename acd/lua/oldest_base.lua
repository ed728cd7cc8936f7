-- oldest_base.lua (read only, standalone: not prefixed with _lib.lua): for each of a tenant's
-- queues, the earliest wait base among its waiting callers, for the KPI collector (acd/kpi.py).
-- KEYS[1..n] keys.acd_queue_waiting(tenant, queue) of one tenant's queues (one slot):
--            zset, score = rank_score(priority, base)
-- ARGV[1]    the priority span of a score (acd.store._PRIO_SPAN, 10^13)
-- Returns one value per key: the earliest base in ms, or '' when nobody waits.
-- Why a walk: a zset is ordered by priority first, so its first member is the highest
-- priority's oldest, not the queue's; within one priority band it is ordered by base. One
-- ZRANGEBYSCORE per band present (at most acd.store.PRIORITY_MAX + 1), each O(log n), instead
-- of reading every waiting caller.
local span = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local from, oldest = '-inf', nil
  while true do
    local r = redis.call('ZRANGEBYSCORE', key, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #r == 0 then break end
    local score = tonumber(r[2])
    local band = math.floor(score / span)
    local base = score - band * span
    if oldest == nil or base < oldest then oldest = base end
    from = string.format('%d', (band + 1) * span)
  end
  out[i] = oldest == nil and '' or string.format('%d', oldest)
end
return out
