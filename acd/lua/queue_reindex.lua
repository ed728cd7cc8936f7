-- queue_reindex.lua: rebuild a queue's longest-idle index (its free agents by tier level,
-- then idle time) from its tiers: after a sync changed them. refresh_sets keeps it true from
-- then on, one agent at a time.
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_queue_tiers(tenant, queue)
--          plus, built from KEYS[1]: the queue's index and its agents' hashes
-- ARGV[3]  queue name
-- Returns how many free agents the index holds.
local q = ARGV[3]
local ik = idle_key(q)
redis.call('DEL', ik)
local tiers = redis.call('ZRANGE', KEYS[7], 0, -1, 'WITHSCORES')
local ids, scores = {}, {}
for i = 1, #tiers, 2 do
  ids[#ids + 1] = tiers[i]
  scores[#scores + 1] = tonumber(tiers[i + 1])
end
if #ids == 0 then return 0 end
local free = smismember_all(FREE, ids)
local n = 0
for i, a in ipairs(ids) do
  if free[i] == 1 then
    local idle = tonumber(redis.call('HGET', agent_key(a), 'idle_since') or 0)
    redis.call('ZADD', ik, I(math.floor(scores[i] / 100000) * IDLE_LEVEL_SPAN + idle), a)
    n = n + 1
  end
end
return n
