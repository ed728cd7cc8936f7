-- Publishes an account's balance from the SQL store into its Redis credit view, and drops the
-- live reservations of the calls that balance already includes (rated in the same commit).
-- KEYS[1] credit hash   KEYS[2] credit:live hash   KEYS[3] billing events stream
-- ARGV[1] seq  ARGV[2] balance_fen  ARGV[3] included_left_s  ARGV[4] increment_s
-- ARGV[5] rate_mobile  ARGV[6] rate_landline  ARGV[7] low_credit_fen  ARGV[8] now_ms
-- ARGV[9] events maxlen  ARGV[10..] call uuids rated in that seq
-- Returns {applied (1: this seq was newer), alert (0 none, 1 low_credit, 2 restored)}.
-- A reservation is "start rate end [cost]": dropping it takes it out of the head's running
-- totals too (pending_fen for an ended call; live_n and live_start_sum for one still live).
-- An older seq never overwrites a newer one (two publishers racing after their commits), but
-- its uuids are dropped all the same: the newer balance includes them too.
for i = 10, #ARGV do
  local entry = redis.call('HGET', KEYS[2], ARGV[i])
  if entry then
    local f = {}
    for word in string.gmatch(entry, '%S+') do f[#f + 1] = tonumber(word) end
    if f[3] and f[3] > 0 then
      redis.call('HINCRBY', KEYS[1], 'pending_fen', -(f[4] or 0))
    else
      redis.call('HINCRBY', KEYS[1], 'live_n', -1)
      redis.call('HINCRBY', KEYS[1], 'live_start_sum', -f[1])
    end
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
local have = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
local seq = tonumber(ARGV[1])
local alert = 0
local applied = 0
if seq > have then
  applied = 1
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'balance_fen', ARGV[2],
             'included_left_s', ARGV[3], 'increment_s', ARGV[4], 'rate_mobile', ARGV[5],
             'rate_landline', ARGV[6], 'low_credit_fen', ARGV[7])
  local balance = tonumber(ARGV[2])
  local low = redis.call('HGET', KEYS[1], 'low') == '1'
  if balance <= tonumber(ARGV[7]) and not low then
    redis.call('HSET', KEYS[1], 'low', '1')
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'event', 'low_credit',
               'balance_fen', ARGV[2], 'threshold_fen', ARGV[7], 'at_ms', ARGV[8])
    alert = 1
  elseif balance > tonumber(ARGV[7]) and low then
    redis.call('HSET', KEYS[1], 'low', '0')
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'event', 'credit_restored',
               'balance_fen', ARGV[2], 'threshold_fen', ARGV[7], 'at_ms', ARGV[8])
    alert = 2
  end
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {applied, alert}
