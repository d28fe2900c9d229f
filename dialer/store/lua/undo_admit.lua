-- undo_admit: the provider did not take the call (rate limited, unreachable) or it was never sent (late
-- for its slot, stalled): give back the live slot and the reservation and put the attempt back in due.
-- A dial the provider may have seen keeps its quota use (never refunded); one never sent gives it back.
-- KEYS: attempt campaign provider_state account leased due provider_waiting account_waiting quota stats
-- (quota: the provider's count for the UTC hour of the admission)
-- ARGV[1] now  ARGV[2] ref  ARGV[3] dial token  ARGV[4] due again at (ms)  ARGV[5] reason
-- ARGV[6] '1' when the dial was never sent
-- Returns 'ok' or 'stale'.
local now = tonumber(ARGV[1])
local a = redis.call('HMGET', K.attempt, 'state', 'dial_token', 'reserved', 'live')
if a[1] ~= 'dialing' or a[2] ~= ARGV[3] then return 'stale' end
local reserved = tonumber(a[3] or '0')
if reserved > 0 then redis.call('HINCRBY', K.account, 'reserved', 0 - reserved) end
if a[4] == '1' then redis.call('HINCRBY', K.provider_state, 'live', -1) end
redis.call('HSET', K.attempt, 'state', 'scheduled', 'reason', ARGV[5], 'due_at', ARGV[4], 'reserved', 0,
  'live', '0', 'dial_token', '')
redis.call('HDEL', K.attempt, 'placed_at')  -- it was not placed: reports show no time for it
if ARGV[6] == '1' and tonumber(redis.call('GET', K.quota) or '0') > 0 then redis.call('DECR', K.quota) end
redis.call('HINCRBY', K.stats, 'deferred|' .. ARGV[5], 1)  -- rate_limited, pace, stalled ... (metrics)
redis.call('HINCRBY', K.campaign, 'dialing', -1)
redis.call('HINCRBY', K.campaign, 'scheduled', 1)
redis.call('ZREM', K.leased, ARGV[2])
redis.call('ZADD', K.due, ARGV[4], ARGV[2])
wake(K.provider_waiting, K.due, now, 1)
if reserved > 0 then wake(K.account_waiting, K.due, now, -1) end
return 'ok'
