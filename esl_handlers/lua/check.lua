-- check.lua: is this (owner, token) still the node's current lease? Read-only.
-- KEYS[1]  lease key
-- KEYS[2]  fence key
-- ARGV[1]  owner id
-- ARGV[2]  fencing token the action carries
-- Returns 1 current; 0 the lease lapsed; -1 another owner holds it; -2 the token is stale.
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -2 end
return 1
