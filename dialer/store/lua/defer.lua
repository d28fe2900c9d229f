-- defer: a claimed attempt that cannot be dialled yet (outside calling hours) goes back to due at a later
-- time, as `scheduled` with a reason (CAS: only from scheduled/claimed).
-- KEYS[1] attempt hash  KEYS[2] leased zset  KEYS[3] due zset
-- ARGV[1] ref  ARGV[2] due again at (ms)  ARGV[3] reason
-- Returns 'ok' or 'stale'.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'scheduled' and state ~= 'claimed' then return 'stale' end
redis.call('HSET', KEYS[1], 'state', 'scheduled', 'reason', ARGV[3], 'due_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 'ok'
