-- renew.lua: extend a node's lease, only for the owner holding the current fencing token.
-- KEYS[1]  lease key
-- KEYS[2]  fence key
-- ARGV[1]  owner id
-- ARGV[2]  fencing token the owner holds
-- ARGV[3]  ttl in milliseconds
-- Returns 1 renewed; 0 the lease lapsed; -1 another owner holds it; -2 the token is stale.
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -2 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
