-- Claims a due delivery for one notifier: its due time moves to the claim's end, so another
-- notifier does not send it too; one that dies mid-send leaves it due again at that time.
-- KEYS[1] due zset
-- ARGV[1] delivery id  ARGV[2] now_ms  ARGV[3] claim end ms
-- Returns 1 when claimed, 0 when not due (taken by another, or delivered).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
