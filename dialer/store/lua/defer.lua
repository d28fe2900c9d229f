-- defer: the claimed attempt cannot be dialled yet (outside calling hours, pace): back to due at a later
-- time, as `scheduled` with a reason. Only the holder of the claim may do it (state claimed and leased).
-- KEYS[1] attempt hash  KEYS[2] leased zset  KEYS[3] due zset  KEYS[4] provider waiting zset
-- ARGV[1] ref  ARGV[2] due again at (ms)  ARGV[3] reason  ARGV[4] now (ms)
-- Returns 'ok' or 'stale'.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'claimed' or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'stale' end
redis.call('HSET', KEYS[1], 'state', 'scheduled', 'reason', ARGV[3], 'due_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
-- it may have been woken from the provider's waiting set: pass the wake on (a spurious one only re-checks)
wake(KEYS[4], KEYS[3], tonumber(ARGV[4]), 1)
return 'ok'
