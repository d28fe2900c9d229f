-- admit: all or nothing, may this claimed attempt dial now? (DESIGN §3 step 4, §10 Pace)
-- Every counter that decides (quota, live calls, money, pace slots) changes here, in the same step.
-- KEYS[1] attempt hash          KEYS[2] campaign hash            KEYS[3] provider hash
-- KEYS[4] provider state hash   KEYS[5] provider quota (this hour) KEYS[6] quota-deferred (next hour)
-- KEYS[7] account hash          KEYS[8] leased zset              KEYS[9] due zset
-- KEYS[10] campaign parked zset KEYS[11] provider waiting zset   KEYS[12] account waiting zset
-- KEYS[13] index of non-empty waiting sets (hash: set -> what it waits on), for the scheduler's sweep
-- ARGV[1] now_ms  ARGV[2] ref  ARGV[3] dial token  ARGV[4] campaign stagger_ms
-- ARGV[5] next hour start (ms)  ARGV[6] most an actor may wait for its slot (ms)
-- ARGV[7] how late (ms) an attempt may arrive and still keep its booked slot
-- ARGV[8] / ARGV[9] index entries of the provider / account waiting set
-- Returns {decision, ms, reason}:
--   admit  slot   marked dialing: quota counted, live slot taken, money reserved, pace slot granted
--   defer  due    back in due at `due` (reason pace | quota)
--   sleep  slot   pace slot booked within the wait limit: sleep until `slot`, then call admit again
--   wait   0      parked until a live call ends (concurrency) or a reservation settles (balance)
--   park   0      campaign paused (or not launched): parked in the campaign until it resumes
--   cancel 0      campaign stopping or over: nothing changed, the caller ends the attempt `canceled`
--   pause  0      money ran out: campaign paused `insufficient_balance`, attempt parked
--   stop   0      provider missing or disabled: nothing changed, the caller fails the campaign
--   stale  0      the attempt is not claimable (already dialing or final): nothing changed
local now = tonumber(ARGV[1])
local ref = ARGV[2]
local att = redis.call('HMGET', KEYS[1], 'state', 'due_at', 'slot_ms', 'first_at')
local state = att[1]
-- only the holder of the claim may decide: a redelivered message for an attempt that has since gone
-- back to due, a waiting set or the parked set finds it unclaimed and changes nothing
if state ~= 'claimed' or not redis.call('ZSCORE', KEYS[8], ref) then
  return {'stale', 0, state or 'missing'}
end
local due_at = tonumber(att[2]) or now

local p = redis.call('HMGET', KEYS[3], 'enabled', 'hourly_quota', 'max_concurrent', 'reserve', 'gap_ms', 'price')
local quota = tonumber(p[2]) or 0
local max_conc = tonumber(p[3]) or 0
local reserve = tonumber(p[4]) or 0
local gap = tonumber(p[5]) or 0
local live = tonumber(redis.call('HGET', KEYS[4], 'live') or '0')

-- A live-call slot must never be stranded while others wait: whoever leaves without taking one, or
-- sees spare capacity after taking one, wakes the next waiter (a spurious wake only re-checks).
local function handoff(live_after)
  if max_conc <= 0 or live_after < max_conc then wake(KEYS[11], KEYS[9], now, 1) end
end
local function park(set, score, reason, index_value)
  redis.call('ZREM', KEYS[8], ref)
  redis.call('ZADD', set, score, ref)
  redis.call('HSET', KEYS[1], 'state', 'scheduled', 'reason', reason)
  if index_value then redis.call('HSET', KEYS[13], set, index_value) end
end
local function defer(due, reason)
  redis.call('ZREM', KEYS[8], ref)
  redis.call('ZADD', KEYS[9], due, ref)
  redis.call('HSET', KEYS[1], 'state', 'scheduled', 'reason', reason, 'due_at', due)
end

local status = redis.call('HGET', KEYS[2], 'status')
if status == 'paused' or status == 'scheduled' then
  park(KEYS[10], due_at, status)
  handoff(live)
  return {'park', 0, status}
end
if status ~= 'running' then
  handoff(live)
  return {'cancel', 0, status or 'missing'}  -- stopping/stopped/cancelled/failed: the caller ends it
end
if not p[1] then return {'stop', 0, 'provider_missing'} end
if p[1] ~= '1' then return {'stop', 0, 'provider_disabled'} end

if quota > 0 and tonumber(redis.call('GET', KEYS[5]) or '0') >= quota then
  -- spread evenly over the next hour by rank, never all at hh:00
  local rank = redis.call('INCR', KEYS[6])
  redis.call('PEXPIRE', KEYS[6], 3 * 3600000)
  local due = tonumber(ARGV[5]) + math.floor((rank - 1) * 3600000 / quota)  -- dialer.quota.deferral_due
  defer(due, 'quota')
  handoff(live)
  return {'defer', due, 'quota'}
end

if max_conc > 0 and live >= max_conc then
  park(KEYS[11], due_at, 'concurrency', ARGV[8])
  return {'wait', 0, 'concurrency'}
end

local acc = redis.call('HMGET', KEYS[7], 'balance', 'reserved')
local balance = tonumber(acc[1] or '0')
local reserved = tonumber(acc[2] or '0')
if balance - reserved < reserve then
  if reserved > 0 then
    park(KEYS[12], due_at, 'balance_outstanding', ARGV[9])
    handoff(live)
    return {'wait', 0, 'balance'}
  end
  redis.call('HSET', KEYS[2], 'status', 'paused', 'status_reason', 'insufficient_balance', 'updated_at', now)
  park(KEYS[10], due_at, 'insufficient_balance')
  handoff(live)
  return {'pause', 0, 'insufficient_balance'}
end

-- pace: a slot booked by an earlier deferral is kept; otherwise the next free one of both
-- the campaign (stagger) and the provider (1/cps): slot = max(now, due, next), GCRA with burst 1.
-- (The scheduler claims up to a second ahead, so `due` may still be in the future: never dial early.)
local slot = tonumber(att[3] or '')
if not slot or now > slot + tonumber(ARGV[7]) then  -- none booked, or arrived too late to keep it
  local c_next = tonumber(redis.call('HGET', KEYS[2], 'next_slot_ms') or '0')
  local p_next = tonumber(redis.call('HGET', KEYS[4], 'next_slot_ms') or '0')
  slot = math.max(now, due_at, c_next, p_next)
  redis.call('HSET', KEYS[2], 'next_slot_ms', slot + tonumber(ARGV[4]))
  redis.call('HSET', KEYS[4], 'next_slot_ms', slot + gap)
  redis.call('HSET', KEYS[1], 'slot_ms', slot)
end
if slot - now > tonumber(ARGV[6]) then
  defer(slot, 'pace')
  handoff(live)
  return {'defer', slot, 'pace'}
end
if slot > now then
  -- booked; the caller sleeps until the slot and asks again, so the status check and the admission
  -- happen at dial time (a pause acknowledged meanwhile stops it)
  return {'sleep', slot, 'pace'}
end

if quota > 0 then
  redis.call('INCR', KEYS[5])
  redis.call('PEXPIRE', KEYS[5], 3 * 3600000)
end
redis.call('HINCRBY', KEYS[4], 'live', 1)
redis.call('HINCRBY', KEYS[7], 'reserved', reserve)
redis.call('HSET', KEYS[1], 'state', 'dialing', 'reason', '', 'dial_token', ARGV[3], 'placed_at', slot,
  'dialing_at', now, 'reserved', reserve, 'live', '1', 'price_per_minute', p[6] or '0')
redis.call('HDEL', KEYS[1], 'slot_ms')
if not att[4] or att[4] == '' then redis.call('HSET', KEYS[1], 'first_at', slot) end
redis.call('HINCRBY', KEYS[2], 'scheduled', -1)
redis.call('HINCRBY', KEYS[2], 'dialing', 1)
handoff(live + 1)
return {'admit', slot, ''}
