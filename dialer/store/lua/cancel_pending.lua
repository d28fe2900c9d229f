-- cancel_pending: after stop/cancel, attempts not yet dialled end `canceled` now (not when they come
-- due hours later). An attempt held by a worker (claimed) is left to it: admission will cancel it.
-- KEYS: campaign due parked provider_waiting account_waiting leased attempt...
-- ARGV[1] now (ms)  ARGV[2] reason  ARGV[3..] refs (same order as the attempt hashes)
-- Returns {attempts canceled, campaign status}.
local now = tonumber(ARGV[1])
local n = 0
for i = 3, #ARGV do
  local h = KEYS[NK + i - 2]
  local ref = ARGV[i]
  local state = redis.call('HGET', h, 'state')
  -- claimed but no longer leased: its worker is gone and it waits in due to be claimed again
  local unheld = state == 'claimed' and not redis.call('ZSCORE', K.leased, ref)
  if state == 'scheduled' or unheld then
    redis.call('ZREM', K.due, ref)
    redis.call('ZREM', K.parked, ref)
    redis.call('ZREM', K.provider_waiting, ref)
    redis.call('ZREM', K.account_waiting, ref)
    redis.call('HSET', h, 'state', 'canceled', 'reason', ARGV[2], 'ended_at', now)
    redis.call('HINCRBY', K.campaign, 'scheduled', -1)
    redis.call('HINCRBY', K.campaign, 'failed', 1)
    n = n + 1
  end
end
return {n, maybe_complete(K.campaign, now)}
