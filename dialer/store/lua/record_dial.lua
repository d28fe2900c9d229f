-- record_dial: the provider accepted the dial (or reconciliation found the call); the attempt becomes a
-- live call, checked with its provider at `check_at` (CAS on the dial token, so a stale worker cannot
-- overwrite a reconciled or re-dialled attempt).
-- KEYS: attempt campaign checks leased sids stats per_minute
-- (sids: the account's call sids -> attempt key, so a call is never adopted by two attempts)
-- ARGV[1] ref  ARGV[2] dial token  ARGV[3] sid  ARGV[4] provider status  ARGV[5] first check at (ms)
-- ARGV[6] must be over by (ms)  ARGV[7] when the provider accepted it (ms)  ARGV[8] attempt key
-- ARGV[9] the stats label ACCOUNT/PROVIDER
-- Returns 'ok' or 'stale'.
local a = redis.call('HMGET', K.attempt, 'state', 'dial_token')
if a[1] ~= 'dialing' or a[2] ~= ARGV[2] then return 'stale' end
local owner = redis.call('HGET', K.sids, ARGV[3])
if owner and owner ~= ARGV[8] then return 'stale' end
redis.call('HSET', K.attempt, 'state', ARGV[4], 'sid', ARGV[3], 'accepted_at', ARGV[7], 'deadline_ms', ARGV[6])
redis.call('HSET', K.sids, ARGV[3], ARGV[8])
redis.call('HINCRBY', K.campaign, 'sent', 1)
redis.call('HINCRBY', K.stats, 'placed|' .. ARGV[9], 1)
local minute = tonumber(ARGV[7]) - tonumber(ARGV[7]) % 60000
redis.call('HINCRBY', K.per_minute, minute, 1)
redis.call('ZADD', K.checks, math.min(tonumber(ARGV[5]), tonumber(ARGV[6])), ARGV[1])
redis.call('ZREM', K.leased, ARGV[1])
return 'ok'
