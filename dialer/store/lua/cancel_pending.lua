-- cancel_pending: after stop/cancel, attempts not yet dialled end `canceled` now (not when they come
-- due hours later). An attempt held by a worker (claimed) is left to it: admission will cancel it.
-- KEYS[1] campaign hash  KEYS[2] due zset  KEYS[3] campaign parked zset  KEYS[4] provider waiting
-- KEYS[5] account waiting  KEYS[6] leased zset  KEYS[7..] attempt hashes
-- ARGV[1] now (ms)  ARGV[2] reason  ARGV[3..] refs (same order as the attempt hashes)
-- Returns {attempts canceled, campaign status}.
local now = tonumber(ARGV[1])
local n = 0
for i = 3, #ARGV do
  local h = KEYS[i + 4]
  local ref = ARGV[i]
  local state = redis.call('HGET', h, 'state')
  -- claimed but no longer leased: its worker is gone and it waits in due to be claimed again
  local unheld = state == 'claimed' and not redis.call('ZSCORE', KEYS[6], ref)
  if state == 'scheduled' or unheld then
    redis.call('ZREM', KEYS[2], ref)
    redis.call('ZREM', KEYS[3], ref)
    redis.call('ZREM', KEYS[4], ref)
    redis.call('ZREM', KEYS[5], ref)
    redis.call('HSET', h, 'state', 'canceled', 'reason', ARGV[2], 'ended_at', now)
    redis.call('HINCRBY', KEYS[1], 'scheduled', -1)
    redis.call('HINCRBY', KEYS[1], 'failed', 1)
    n = n + 1
  end
end
return {n, maybe_complete(KEYS[1], now)}
