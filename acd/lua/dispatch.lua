-- dispatch.lua: pair one queue's waiting callers with free agents and reserve them.
-- (Prefixed with _lib.lua and _dispatch.lua: KEYS[1..6], ARGV[1..2] as described there.)
-- KEYS[7]  keys.acd_queue(tenant, queue)         (built again from KEYS[1] inside)
-- KEYS[8]  keys.acd_queue_tiers(tenant, queue)
-- KEYS[9]  keys.acd_queue_waiting(tenant, queue)
--          plus, built from KEYS[1]: the tiers' agent hashes and the waiting members' hashes
-- ARGV[3]  queue name
-- ARGV[4]  most offers to make
-- ARGV[5]  how many waiting callers to look at, at most
-- ARGV[6]  reservation time before offering() must be called, ms
-- ARGV[7]  the joining caller whose step runs this ("" none): an offer to it whose agents
--          all ring at once is taken to Receiving at once (see RING_NOW in _dispatch.lua)
-- ARGV[8]  offering's margin, ms (as offering.lua's ARGV[6])
-- ARGV[9..] random numbers in [0, 1) for random/percentage (one per offer at most)
-- Returns a list of offers, each {queue, call uuid, node, token, deadline ms, callback,
-- {{agent, contact, type, delay ms}, ...}, rung "1"/"0"}; empty when nothing could be paired.
local rands = {}
for i = 9, #ARGV do rands[#rands + 1] = ARGV[i] end
if ARGV[7] ~= '' then RING_NOW = {u = ARGV[7], margin_ms = tonumber(ARGV[8])} end
local out = {}
dispatch_queue(ARGV[3], tonumber(ARGV[4]), rands, 0, tonumber(ARGV[6]), tonumber(ARGV[5]), out)
return out
