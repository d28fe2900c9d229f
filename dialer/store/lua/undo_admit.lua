-- undo_admit: the provider did not take the call (rate limited, unreachable): give back the live slot and
-- the reservation and put the attempt back in due. The quota use is kept (never refunded).
-- KEYS[1] attempt  KEYS[2] campaign  KEYS[3] provider state  KEYS[4] account  KEYS[5] leased zset
-- KEYS[6] due zset  KEYS[7] provider waiting  KEYS[8] account waiting
-- ARGV[1] now  ARGV[2] ref  ARGV[3] dial token  ARGV[4] due again at (ms)  ARGV[5] reason
-- Returns 'ok' or 'stale'.
local now = tonumber(ARGV[1])
local a = redis.call('HMGET', KEYS[1], 'state', 'dial_token', 'reserved', 'live')
if a[1] ~= 'dialing' or a[2] ~= ARGV[3] then return 'stale' end
local reserved = tonumber(a[3] or '0')
if reserved > 0 then redis.call('HINCRBY', KEYS[4], 'reserved', 0 - reserved) end
if a[4] == '1' then redis.call('HINCRBY', KEYS[3], 'live', -1) end
redis.call('HSET', KEYS[1], 'state', 'scheduled', 'reason', ARGV[5], 'due_at', ARGV[4], 'reserved', 0,
  'live', '0', 'dial_token', '')
redis.call('HINCRBY', KEYS[2], 'dialing', -1)
redis.call('HINCRBY', KEYS[2], 'scheduled', 1)
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[2])
wake(KEYS[7], KEYS[6], now, 1)
if reserved > 0 then wake(KEYS[8], KEYS[6], now, -1) end
return 'ok'
