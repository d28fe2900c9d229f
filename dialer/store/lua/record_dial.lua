-- record_dial: the provider accepted the dial; the attempt becomes a live call (CAS on the dial token,
-- so a stale worker cannot overwrite a reconciled or re-dialled attempt).
-- KEYS[1] attempt hash  KEYS[2] campaign hash  KEYS[3] live zset  KEYS[4] leased zset
-- ARGV[1] ref  ARGV[2] dial token  ARGV[3] sid  ARGV[4] provider status  ARGV[5] must be over by (ms)
-- ARGV[6] when the provider accepted it (ms)
-- Returns 'ok' or 'stale'.
local a = redis.call('HMGET', KEYS[1], 'state', 'dial_token')
if a[1] ~= 'dialing' or a[2] ~= ARGV[2] then return 'stale' end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'sid', ARGV[3], 'accepted_at', ARGV[6])
redis.call('HINCRBY', KEYS[2], 'sent', 1)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 'ok'
