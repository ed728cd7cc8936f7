-- _dispatch.lua: the dispatch pass over one queue, shared by dispatch.lua and
-- dispatch_agent.lua (acd/store.py prepends _lib.lua and this file to both).
--
-- One pass: the queue's free agents (its tiers zset, intersected with the tenant's free set,
-- then HMGET of the fields a strategy reads), then its waiting callers in rank order (priority
-- first, then time waited); each caller is paired with the agent(s) its strategy picks among
-- the free agents it may have (tier rules, skills), which are reserved at once under a new
-- token. A caller nobody free can serve does not block the callers behind it.

local LEVEL_SPAN = 100000   -- tier score = level * LEVEL_SPAN + position
local AGENT_LEVELS = {A = 1, B = 2, C = 3}

local function queue_setup(q)
  local qk = queue_key(q)
  local c = redis.call('HMGET', qk, 'strategy', 'ring_s', 'prog_s', 'weights', 'skills',
                       'relax', 'tra', 'trw', 'trm', 'trn', 'rr_last')
  if not c[1] then return nil end
  local relax = {}
  for after, floor in string.gmatch(c[6] or '', '(%d+):(%d+)') do
    relax[#relax + 1] = {tonumber(after) * 1000, tonumber(floor)}
  end
  return {q = q, qk = qk, strategy = c[1], prog_ms = tonumber(c[3] or 10) * 1000,
          ring_ms = tonumber(c[2] or 20) * 1000,
          weights = parse_kv(c[4]), has_weights = (c[4] or '') ~= '',
          skills = parse_kv(c[5]), relax = relax, tra = c[7] == '1',
          trw_ms = tonumber(c[8] or 0) * 1000, trm = c[9] == '1', trn = c[10] == '1',
          rr_last = tonumber(c[11] or -1)}
end

-- The queue's free agents, loaded a tier level at a time (lowest first): most passes stop at
-- the first level, so the agents of the others are never read. `pool.cands` is in tier order
-- (level, position, id) with what strategies read.
local function free_pool(cfg)
  local tiers = redis.call('ZRANGE', tiers_key(cfg.q), 0, -1, 'WITHSCORES')
  local n = #tiers / 2
  local pool = {cands = {}, ids = {}, scores = {}, next = 1, n = n}
  if n == 0 then return pool end
  for i = 1, n do pool.ids[i] = tiers[2 * i - 1]; pool.scores[i] = tonumber(tiers[2 * i]) end
  pool.free = smismember_all(FREE, pool.ids)
  return pool
end

-- Load the next tier level's free agents; false when every level is loaded.
local function load_level(pool)
  local i = pool.next
  if i > pool.n then return false end
  local level = math.floor(pool.scores[i] / LEVEL_SPAN)
  while i <= pool.n and math.floor(pool.scores[i] / LEVEL_SPAN) == level do
    if pool.free[i] == 1 then
      local a = pool.ids[i]
      local f = redis.call('HMGET', agent_key(a), 'busy_until', 'skills', 'idle_since',
                           'alevel', 'grp', 'weight', 'day', 'calls', 'talk_ms', 'contact',
                           'type', 'regn')
      if tonumber(f[1] or 0) <= NOW and f[10] then
        local today = f[7] == DAY
        pool.cands[#pool.cands + 1] = {
          id = a, ts = pool.scores[i], level = level, raw_skills = f[2] or '',
          idle = tonumber(f[3] or 0), alevel = AGENT_LEVELS[f[4] or 'B'] or 2,
          grp = f[5] or '', weight = tonumber(f[6] or 1),
          calls = today and tonumber(f[8] or 0) or 0,
          talk = today and tonumber(f[9] or 0) or 0, contact = f[10], type = f[11] or 'callback',
          regn = f[12]}
      end
    end
    i = i + 1
  end
  pool.next = i
  return true
end

-- Tier rules: per distinct level (ascending), how many agents are logged in (Available).
local function level_table(cfg, ids, scores)
  if not cfg.tra or #ids == 0 then return nil end
  local avail = nil
  if cfg.trn then avail = smismember_all(AVAIL, ids) end
  local levels, count = {}, {}
  for i = 1, #ids do
    local l = math.floor(scores[i] / LEVEL_SPAN)
    if count[l] == nil then count[l] = 0; levels[#levels + 1] = l end
    if avail and avail[i] == 1 then count[l] = count[l] + 1 end
  end
  table.sort(levels)
  return {levels = levels, count = count}
end

-- The highest tier level a caller who waited `waited` ms may be offered.
local function max_level(cfg, lt, waited)
  if lt == nil then return math.huge end
  local cur, seen = 1, 0
  for _, l in ipairs(lt.levels) do
    if l > cur then
      if cfg.trn and seen == 0 then
        cur = l
      elseif waited >= (cfg.trm and l or 1) * cfg.trw_ms then
        cur = l
        seen = 0
      else
        break
      end
    end
    seen = seen + lt.count[l]
  end
  return cur
end

-- The caller's required proficiencies after relaxation; nil: skills ignored.
local function required(cfg, mskills, waited)
  local floor = 11
  for _, r in ipairs(cfg.relax) do
    if waited >= r[1] and r[2] < floor then floor = r[2] end
  end
  if floor == 0 then return nil end
  local req = {}
  for s, v in pairs(cfg.skills) do req[s] = v end
  for s, v in pairs(mskills) do if (req[s] or 0) < v then req[s] = v end end
  for s, v in pairs(req) do if v > floor then req[s] = floor end end
  return req
end

-- Whether the agent's phone can be rung through the caller's node: not when that node's
-- registrations say it is absent ("reg@<node>" "0"; agent_set.lua). A phone registers on one
-- switch of several; a node that has said nothing is tried (its USER_NOT_REGISTERED, if any,
-- marks it absent there only).
local function reaches(c, node)
  if not c.regn or node == nil or node == false or node == '' then return true end
  local seen = c.reach
  if seen == nil then seen = {}; c.reach = seen end
  local ok = seen[node]
  if ok == nil then
    ok = redis.call('HGET', agent_key(c.id), 'reg@' .. node) ~= '0'
    seen[node] = ok
  end
  return ok
end

local function meets(c, req)
  if req == nil or next(req) == nil then return true end
  if c.skills == nil then c.skills = parse_kv(c.raw_skills) end
  for s, v in pairs(req) do
    if (c.skills[s] or 0) < v then return false end
  end
  return true
end

-- Lowest (best) key first, the agent id breaking ties.
local function best_by(list, key)
  local best, bk = nil, nil
  for _, c in ipairs(list) do
    local k = key(c)
    if best == nil or k < bk or (k == bk and c.id < best.id) then best, bk = c, k end
  end
  return best
end

local function top_level(elig)
  local l = elig[1].level
  local out = {}
  for _, c in ipairs(elig) do if c.level == l then out[#out + 1] = c end end
  return out
end

-- Strategy: the agents to offer (one, or several for ring-all / ring-progressively) and
-- their ring delays. `elig` is in tier order and non-empty; r is in [0, 1).
local function pick(cfg, elig, r)
  local s = cfg.strategy
  if s == 'ring-all' then
    local out, delays = top_level(elig), {}
    for i = 1, #out do delays[i] = 0 end
    return out, delays
  elseif s == 'ring-progressively' then
    local delays = {}
    for i = 1, #elig do delays[i] = (i - 1) * cfg.prog_ms end
    return elig, delays
  elseif s == 'top-down' or s == 'sequentially-by-agent-order' then
    return {elig[1]}, {0}
  end
  local lvl = top_level(elig)
  local c
  if s == 'round-robin' then
    for _, x in ipairs(lvl) do
      if c == nil and x.ts > cfg.rr_last then c = x end
    end
    c = c or lvl[1]
  elseif s == 'agent-with-least-talk-time' then
    c = best_by(lvl, function(x) return x.talk end)
  elseif s == 'agent-with-fewest-calls' then
    c = best_by(lvl, function(x) return x.calls end)
  elseif s == 'random' then
    c = lvl[math.min(#lvl, math.floor(r * #lvl) + 1)]
  elseif s == 'agent-level' then
    c = best_by(lvl, function(x) return x.alevel * 1e14 + x.idle end)
  elseif s == 'percentage' then
    local ents, w, total = {}, {}, 0
    for _, x in ipairs(lvl) do
      local e, wt = nil, 0
      if cfg.has_weights then
        if cfg.weights[x.id] then
          e, wt = 'a:' .. x.id, cfg.weights[x.id]
        elseif x.grp ~= '' and cfg.weights[x.grp] then
          e, wt = 'g:' .. x.grp, cfg.weights[x.grp]
        end
      else
        e, wt = 'a:' .. x.id, x.weight
      end
      if e and wt > 0 then
        if w[e] == nil then ents[#ents + 1] = e; w[e] = wt; total = total + wt end
      end
    end
    if total > 0 then
      local at, chosen = r * total, ents[#ents]
      for _, e in ipairs(ents) do
        if at < w[e] then chosen = e; break end
        at = at - w[e]
      end
      local members = {}
      for _, x in ipairs(lvl) do
        if ('a:' .. x.id) == chosen or ('g:' .. x.grp) == chosen then
          members[#members + 1] = x
        end
      end
      c = best_by(members, function(x) return x.idle end)
    end
  end
  -- longest-idle-agent, and the fallback of a percentage split with nobody weighted free
  c = c or best_by(lvl, function(x) return x.idle end)
  return {c}, {0}
end

-- The caller whose own step runs this dispatch (dispatch.lua's ARGV[7]; nil otherwise): an
-- offer made to it that rings every agent at once is taken to Receiving here, as offering.lua
-- would, so its holder originates straight from this reply, one round trip after the join.
-- {u = member uuid, margin_ms = offering's margin}
local RING_NOW = nil

-- Reserve `picked` for caller `u` of queue cfg.q; appends the offer to `out` as {queue,
-- member, node, token, deadline, callback, agents, rung}: rung "1" when RING_NOW applied.
local function reserve(cfg, u, m, picked, delays, reserve_ms, out)
  local token = I(redis.call('INCR', SEQ))
  local deadline = NOW + reserve_ms + delays[#delays]
  redis.call('ZREM', waiting_key(cfg.q), u)
  local names, flat = {}, {}
  for i, c in ipairs(picked) do
    names[i] = c.id
    redis.call('HSET', agent_key(c.id), 'token', token, 'member', u, 'rq', cfg.q)
    set_state(c.id, RESERVED)
    flat[#flat + 1] = {c.id, c.contact, c.type, I(delays[i])}
  end
  redis.call('HSET', member_key(u), 'state', M_TRYING, 'token', token,
             'deadline', I(deadline), 'agents', table.concat(names, ','), 'offered_ms', I(NOW))
  redis.call('ZADD', TIMERS, deadline, 'r|' .. u)
  if cfg.strategy == 'round-robin' then
    redis.call('HSET', cfg.qk, 'rr_last', I(picked[1].ts))
    cfg.rr_last = picked[1].ts
  end
  local rung = '0'
  if RING_NOW ~= nil and RING_NOW.u == u and delays[#delays] == 0 then
    local mf = redis.call('HMGET', member_key(u), 'caller', 'joined_ms')
    for _, c in ipairs(picked) do
      deadline = ring_agent(u, cfg.q, c.id, c.type, c.contact, cfg.ring_ms, RING_NOW.margin_ms,
                            deadline, mf)
    end
    rung = '1'
  end
  out[#out + 1] = {cfg.q, u, m[2] or '', token, I(deadline), m[4] or '', flat, rung}
end

-- Longest-idle-agent (without tier rules), the common case, walks the queue's idle index
-- (refresh_sets: free agents by tier level, then idle since, then id: the order pick() would
-- give) a page at a time instead of reading every free agent of the level: a caller with
-- no skills takes the first agent read, so a pass costs a few reads, not one per agent
-- (3.7 us each: 2.8 ms for a 700-agent queue). Each agent is read at most once per pass.
local IDLE_PAGE = 16

local function idle_page(pool)
  -- Agents reserved in this pass left the index (refresh_sets): the offset steps back.
  local from = pool.fetched - pool.removed
  local got = redis.call('ZRANGE', idle_key(pool.q), from, from + IDLE_PAGE - 1, 'WITHSCORES')
  pool.fetched = pool.fetched + #got / 2
  if #got < 2 * IDLE_PAGE then pool.done = true end
  for i = 1, #got, 2 do
    local a = got[i]
    local f = redis.call('HMGET', agent_key(a), 'busy_until', 'skills', 'idle_since', 'contact',
                         'type', 'state', 'status', 'reg', 'regn')
    -- the agent's own hash has the last word over the index
    if tonumber(f[1] or 0) <= NOW and f[4] and f[6] == WAITING and is_avail(f[7])
        and f[8] ~= '0' then
      pool.loaded[#pool.loaded + 1] = {
        id = a, level = math.floor(tonumber(got[i + 1]) / IDLE_LEVEL_SPAN),
        raw_skills = f[2] or '', idle = tonumber(f[3] or 0), contact = f[4],
        type = f[5] or 'callback', regn = f[9]}
    end
  end
end

local function dispatch_idle(cfg, budget, reserve_ms, scan, out)
  local pool = {q = cfg.q, loaded = {}, fetched = 0, removed = 0, done = false}
  local taken = {}
  local offers = 0
  for _, u in ipairs(redis.call('ZRANGE', waiting_key(cfg.q), 0, scan - 1)) do
    if offers >= budget then break end
    local m = redis.call('HMGET', member_key(u), 'jbase', 'node', 'skills', 'callback')
    local req = required(cfg, parse_kv(m[3]), NOW - tonumber(m[1] or NOW))
    local c, i, elsewhere = nil, 1, false
    while true do
      while c == nil and i <= #pool.loaded do
        local x = pool.loaded[i]
        if not taken[x.id] and meets(x, req) then
          if reaches(x, m[2]) then c = x else elsewhere = true end
        end
        i = i + 1
      end
      if c ~= nil or pool.done then break end
      idle_page(pool)
    end
    if c ~= nil then
      reserve(cfg, u, m, {c}, {0}, reserve_ms, out)
      taken[c.id] = true
      pool.removed = pool.removed + 1
      offers = offers + 1
    elseif (req == nil or next(req) == nil) and not elsewhere then
      break     -- nobody free is left for a caller who needs nothing: nor for the others
    end
  end
end

-- One pass over queue q, at most `budget` offers. Returns how many random numbers were used
-- so far (`rands` are shared by the passes of one script call).
local function dispatch_queue(q, budget, rands, ri, reserve_ms, scan, out)
  local cfg = queue_setup(q)
  if cfg == nil or budget <= 0 then return ri end
  local wk = waiting_key(q)
  if redis.call('ZCARD', wk) == 0 then return ri end
  if cfg.strategy == 'longest-idle-agent' and not cfg.tra then
    dispatch_idle(cfg, budget, reserve_ms, scan, out)
    return ri
  end
  local pool = free_pool(cfg)
  local any = false
  for i = 1, pool.n do if pool.free[i] == 1 then any = true; break end end
  if not any then return ri end
  load_level(pool)
  if cfg.strategy == 'ring-progressively' then while load_level(pool) do end end
  local lt = level_table(cfg, pool.ids, pool.scores)
  local members = redis.call('ZRANGE', wk, 0, scan - 1)
  local offers = 0
  for _, u in ipairs(members) do
    if offers >= budget or (#pool.cands == 0 and pool.next > pool.n) then break end
    local m = redis.call('HMGET', member_key(u), 'jbase', 'node', 'skills', 'callback')
    local waited = NOW - tonumber(m[1] or NOW)
    local ml = max_level(cfg, lt, waited)
    local req = required(cfg, parse_kv(m[3]), waited)
    local elig = {}
    while true do
      for _, c in ipairs(pool.cands) do
        if c.level <= ml and meets(c, req) and reaches(c, m[2]) then elig[#elig + 1] = c end
      end
      -- nobody loaded fits this caller: the next level may (levels above ml never do)
      if #elig > 0 or pool.next > pool.n
          or math.floor(pool.scores[pool.next] / LEVEL_SPAN) > ml then break end
      load_level(pool)
    end
    if #elig > 0 then
      ri = ri + 1
      local picked, delays = pick(cfg, elig, tonumber(rands[ri] or 0))
      reserve(cfg, u, m, picked, delays, reserve_ms, out)
      offers = offers + 1
      local taken = {}
      for _, c in ipairs(picked) do taken[c.id] = true end
      local rest = {}
      for _, c in ipairs(pool.cands) do if not taken[c.id] then rest[#rest + 1] = c end end
      pool.cands = rest
    end
  end
  return ri
end
