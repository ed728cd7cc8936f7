-- release.lua: give a node's lease up at once (warm stop), only for its current owner.
-- KEYS[1]  lease key
-- KEYS[2]  fence key
-- ARGV[1]  owner id
-- ARGV[2]  fencing token the owner holds
-- Returns 1 released; 0 the lease had lapsed; -1 another owner holds it; -2 the token is stale.
-- The fence counter is kept: the next owner's token must be above this one.
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -2 end
redis.call('DEL', KEYS[1])
return 1
