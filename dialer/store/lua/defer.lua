-- defer: the claimed attempt cannot be dialled yet (outside calling hours, pace): back to due at a later
-- time, as `scheduled` with a reason. Only the holder of the claim may do it (state claimed and leased).
-- KEYS: attempt leased due provider_waiting stats
-- ARGV[1] ref  ARGV[2] due again at (ms)  ARGV[3] reason  ARGV[4] now (ms)
-- ARGV[5] the zone whose calling hours decided ('' = none)
-- Returns 'ok' or 'stale'.
local state = redis.call('HGET', K.attempt, 'state')
if state ~= 'claimed' or not redis.call('ZSCORE', K.leased, ARGV[1]) then return 'stale' end
redis.call('HSET', K.attempt, 'state', 'scheduled', 'reason', ARGV[3], 'due_at', ARGV[2])
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', K.attempt, 'hours_zone', ARGV[5]) end
redis.call('ZREM', K.leased, ARGV[1])
redis.call('HINCRBY', K.stats, 'deferred|' .. ARGV[3], 1)
redis.call('ZADD', K.due, ARGV[2], ARGV[1])
-- it may have been woken from the provider's waiting set: pass the wake on (a spurious one only re-checks)
wake(K.provider_waiting, K.due, tonumber(ARGV[4]), 1)
return 'ok'
