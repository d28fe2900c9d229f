-- admit: all or nothing, may this claimed attempt dial now? (DESIGN §3 step 4, §10 Pace)
-- Every counter that decides (quota, live calls, money, pace slots) changes here, in the same step.
-- KEYS: attempt campaign provider provider_state quota quota_deferred account leased due parked provider_waiting account_waiting waiting_index stats
-- (quota: the provider's calls this UTC hour; quota_deferred: attempts deferred into the next hour;
-- waiting_index: the non-empty waiting sets and what each waits on, for the scheduler's sweep)
-- ARGV[1] now_ms  ARGV[2] ref  ARGV[3] dial token  ARGV[4] campaign stagger_ms
-- ARGV[5] next hour start (ms)  ARGV[6] most an actor may wait for its slot (ms)
-- ARGV[7] how late (ms) an attempt may arrive and still keep its booked slot
-- ARGV[8] / ARGV[9] index entries of the provider / account waiting set  ARGV[10] the caller id it dials from
-- ARGV[11] the zone whose calling hours allowed the dial ('' = no calling hours)
-- Returns {decision, ms, reason}:
--   admit  slot   marked dialing: quota counted, live slot taken, money reserved, pace slot granted
--                 (a 4th element: the price per minute it was admitted at)
--   defer  due    back in due at `due` (reason pace | quota)
--   sleep  slot   pace slot booked within the wait limit (reason pace), or the attempt is not due until
--                 `slot` (reason due, nothing booked): sleep until `slot`, then call admit again
--   wait   0      parked until a live call ends (concurrency) or a reservation settles (balance)
--   park   0      campaign paused (or not launched): parked in the campaign until it resumes
--   cancel 0      campaign stopping or over: nothing changed, the caller ends the attempt `canceled`
--   pause  0      money ran out: campaign paused `insufficient_balance`, attempt parked
--   stop   0      provider missing or disabled: nothing changed, the caller fails the campaign
--   stale  0      the attempt is not claimable (already dialing or final): nothing changed
local now = tonumber(ARGV[1])
local ref = ARGV[2]
local att = redis.call('HMGET', K.attempt, 'state', 'due_at', 'slot_ms', 'first_at')
local state = att[1]
-- only the holder of the claim may decide: a redelivered message for an attempt that has since gone
-- back to due, a waiting set or the parked set finds it unclaimed and changes nothing
if state ~= 'claimed' or not redis.call('ZSCORE', K.leased, ref) then
  return {'stale', 0, state or 'missing'}
end
local due_at = tonumber(att[2]) or now
-- not due yet (the scheduler claims up to a second ahead): sleep until it is, booking nothing, so that
-- attempts take pace slots in the order they fall due (one booking a slot ahead of the others would
-- leave the slots before it unused)
if due_at > now then return {'sleep', due_at, 'due'} end

local p = redis.call('HMGET', K.provider, 'enabled', 'hourly_quota', 'max_concurrent', 'reserve', 'gap_ms', 'price')
local quota = tonumber(p[2]) or 0
local max_conc = tonumber(p[3]) or 0
local reserve = tonumber(p[4]) or 0
local gap = tonumber(p[5]) or 0
local ps = redis.call('HMGET', K.provider_state, 'live', 'slow_until', 'slow_gap')
local live = tonumber(ps[1] or '0')
-- the carrier said "too many requests" lately: its pace is slowed down for a while
if tonumber(ps[2] or '0') > now then gap = math.max(gap, tonumber(ps[3] or '0')) end

-- A live-call slot must never be stranded while others wait: whoever leaves without taking one, or
-- sees spare capacity after taking one, wakes the next waiter (a spurious wake only re-checks).
local function handoff(live_after)
  if max_conc <= 0 or live_after < max_conc then wake(K.provider_waiting, K.due, now, 1) end
end
local function park(set, score, reason, index_value)
  redis.call('HINCRBY', K.stats, 'deferred|' .. reason, 1)
  redis.call('ZREM', K.leased, ref)
  redis.call('ZADD', set, score, ref)
  redis.call('HSET', K.attempt, 'state', 'scheduled', 'reason', reason)
  if index_value then redis.call('HSET', K.waiting_index, set, index_value) end
end
local function defer(due, reason)
  redis.call('HINCRBY', K.stats, 'deferred|' .. reason, 1)
  redis.call('ZREM', K.leased, ref)
  redis.call('ZADD', K.due, due, ref)
  redis.call('HSET', K.attempt, 'state', 'scheduled', 'reason', reason, 'due_at', due)
end

local status = redis.call('HGET', K.campaign, 'status')
if status == 'paused' or status == 'scheduled' then
  park(K.parked, due_at, status)
  handoff(live)
  return {'park', 0, status}
end
if status ~= 'running' then
  handoff(live)
  return {'cancel', 0, status or 'missing'}  -- stopping/stopped/cancelled/failed: the caller ends it
end
if not p[1] then return {'stop', 0, 'provider_missing'} end
if p[1] ~= '1' then return {'stop', 0, 'provider_disabled'} end

if quota > 0 and tonumber(redis.call('GET', K.quota) or '0') >= quota then
  -- spread evenly over the next hour by rank, never all at hh:00
  local rank = redis.call('INCR', K.quota_deferred)
  redis.call('PEXPIRE', K.quota_deferred, 3 * HOUR_MS)
  local due = tonumber(ARGV[5]) + math.floor((rank - 1) * HOUR_MS / quota)  -- pace.deferral_due
  defer(due, 'quota')
  handoff(live)
  return {'defer', due, 'quota'}
end

if max_conc > 0 and live >= max_conc then
  park(K.provider_waiting, due_at, 'concurrency', ARGV[8])
  return {'wait', 0, 'concurrency'}
end

local acc = redis.call('HMGET', K.account, 'balance', 'reserved')
local balance = tonumber(acc[1] or '0')
local reserved = tonumber(acc[2] or '0')
if balance - reserved < reserve then
  if reserved > 0 then
    park(K.account_waiting, due_at, 'balance_outstanding', ARGV[9])
    handoff(live)
    return {'wait', 0, 'balance'}
  end
  redis.call('HSET', K.campaign, 'status', 'paused', 'status_reason', 'insufficient_balance', 'updated_at', now)
  park(K.parked, due_at, 'insufficient_balance')
  handoff(live)
  return {'pause', 0, 'insufficient_balance'}
end

-- pace: a slot booked by an earlier deferral is kept; otherwise the next free one of both
-- the campaign (stagger) and the provider (1/cps with a margin): slot = max(now, due, next), GCRA with
-- burst 1.
-- (The scheduler claims up to a second ahead, so `due` may still be in the future: never dial early.)
local slot = tonumber(att[3] or '')
if not slot or now > slot + tonumber(ARGV[7]) then  -- none booked, or arrived too late to keep it
  local c_next = tonumber(redis.call('HGET', K.campaign, 'next_slot_ms') or '0')
  local p_next = tonumber(redis.call('HGET', K.provider_state, 'next_slot_ms') or '0')
  slot = math.max(now, due_at, c_next, math.ceil(p_next))
  redis.call('HSET', K.campaign, 'next_slot_ms', slot + tonumber(ARGV[4]))
  -- the provider's gap is fractional; its fraction is carried when the provider set the slot (pace.py)
  local base = slot
  if p_next > slot - 1 then base = p_next end
  redis.call('HSET', K.provider_state, 'next_slot_ms', string.format('%.3f', base + gap))
  redis.call('HSET', K.attempt, 'slot_ms', slot)
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
  redis.call('INCR', K.quota)
  redis.call('PEXPIRE', K.quota, 3 * HOUR_MS)
end
redis.call('HINCRBY', K.provider_state, 'live', 1)
redis.call('HINCRBY', K.account, 'reserved', reserve)
redis.call('HSET', K.attempt, 'state', 'dialing', 'reason', '', 'dial_token', ARGV[3], 'placed_at', slot,
  'dialing_at', now, 'reserved', reserve, 'live', '1', 'price_per_minute', p[6] or '0', 'from_number', ARGV[10])
redis.call('HDEL', K.attempt, 'slot_ms')
if ARGV[11] and ARGV[11] ~= '' then redis.call('HSET', K.attempt, 'hours_zone', ARGV[11]) end
if not att[4] or att[4] == '' then redis.call('HSET', K.attempt, 'first_at', slot) end
redis.call('HINCRBY', K.campaign, 'scheduled', -1)
redis.call('HINCRBY', K.campaign, 'dialing', 1)
handoff(live + 1)
return {'admit', slot, '', p[6] or '0'}
