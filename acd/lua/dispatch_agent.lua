-- dispatch_agent.lua: an agent became free: dispatch over that agent's queues, the queues
-- where its tier level is best first (then the queue whose first caller ranks best), until
-- the agent is taken or the offers run out.
-- (Prefixed with _lib.lua and _dispatch.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_agent_queues(tenant, agent): its queues, score level*10^5+position
--          plus, built from KEYS[1]: those queues' hashes, tiers and waiting zsets, their
--          agents' and waiting members' hashes
-- ARGV[3]  agent id
-- ARGV[4]  most offers to make
-- ARGV[5]  how many waiting callers to look at per queue, at most
-- ARGV[6]  reservation time before offering() must be called, ms
-- ARGV[7..] random numbers in [0, 1)
-- Returns offers as dispatch.lua does.
local agent = ARGV[3]
local budget = tonumber(ARGV[4])
local rands = {}
for i = 7, #ARGV do rands[#rands + 1] = ARGV[i] end
local out = {}
if redis.call('SISMEMBER', FREE, agent) == 0 then return out end
local qs = redis.call('ZRANGE', KEYS[7], 0, -1, 'WITHSCORES')
local order = {}
for i = 1, #qs, 2 do
  local head = redis.call('ZRANGE', waiting_key(qs[i]), 0, 0, 'WITHSCORES')
  if #head > 0 then
    order[#order + 1] = {q = qs[i], level = math.floor(tonumber(qs[i + 1]) / LEVEL_SPAN),
                         head = tonumber(head[2])}
  end
end
table.sort(order, function(a, b)
  if a.level ~= b.level then return a.level < b.level end
  if a.head ~= b.head then return a.head < b.head end
  return a.q < b.q
end)
local ri = 0
for _, o in ipairs(order) do
  if #out >= budget or redis.call('SISMEMBER', FREE, agent) == 0 then break end
  ri = dispatch_queue(o.q, budget - #out, rands, ri, tonumber(ARGV[6]), tonumber(ARGV[5]), out)
end
return out
