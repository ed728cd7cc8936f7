-- offering.lua: the offer's holder is about to ring `agent`: Reserved -> Receiving, and the
-- reservation's deadline moves to now + ring timeout + margin (never earlier).
-- (Prefixed with _lib.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_member(tenant, call uuid)
-- KEYS[8]  keys.acd_agent(tenant, agent)
-- KEYS[9]  keys.acd_queue(tenant, queue)
-- ARGV[3]  call uuid   ARGV[4] token   ARGV[5] agent   ARGV[6] margin ms
-- Returns OK 1 (ring it; also when already Receiving), GONE 0 (lapsed, caller left, or the
-- agent is no longer part of this offer: do not ring).
local u, token, a = ARGV[3], ARGV[4], ARGV[5]
local m = offer_live(u, token, a)
if m == nil or tonumber(m[4]) <= NOW then return 0 end
local f = redis.call('HMGET', KEYS[8], 'state', 'type', 'contact')
if f[1] == RECEIVING then return 1 end
local ring_ms = tonumber(redis.call('HGET', KEYS[9], 'ring_s') or 20) * 1000
ring_agent(u, m[5], a, f[2], f[3], ring_ms, tonumber(ARGV[6]), tonumber(m[4]),
           redis.call('HMGET', KEYS[7], 'caller', 'joined_ms'))
return 1
