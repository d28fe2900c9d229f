-- finish: the one path by which an attempt ends (provider outcome, dial error, skip, cancel, poison):
-- settles money idempotently (CAS on the attempt's state), frees the live slot, updates the counters,
-- writes the recall attempt when one is due, and completes the campaign when nothing is left.
-- KEYS: attempt campaign provider_state account checks checks_leased leased due provider_waiting account_waiting next_attempt campaign_attempts parked stats
-- (checks / checks_leased: when each live call is next checked with its provider)
-- ARGV[1] now  ARGV[2] ref  ARGV[3] allowed current states (comma list)  ARGV[4] sid ('' = any)
-- ARGV[5] final state  ARGV[6] reason  ARGV[7] outcome: delivered|failed|skipped|recall
-- ARGV[8] answered_by  ARGV[9] duration_s  ARGV[10] cost (units)  ARGV[11] error_code  ARGV[12] ended_at
-- ARGV[13] recall: next ref  ARGV[14] its due_at  ARGV[15] its order score  ARGV[16] its JSON
-- ARGV[17] '1' when the failure is permanent (never re-executed)  ARGV[18] the stats label ACCOUNT/PROVIDER
-- Returns {'ok', campaign status} or {'stale', attempt state}.
local now = tonumber(ARGV[1])
local ref = ARGV[2]
local a = redis.call('HMGET', K.attempt, 'state', 'sid', 'reserved', 'live')
if not a[1] or not is_member(ARGV[3], a[1]) then return {'stale', a[1] or 'missing'} end
if ARGV[4] ~= '' and a[2] and a[2] ~= '' and a[2] ~= ARGV[4] then return {'stale', 'other_call'} end
local was_live = LIVE[a[1]] ~= nil
-- an attempt that never went live is ended only by the holder of its claim
if not was_live and not redis.call('ZSCORE', K.leased, ref) then return {'stale', 'unclaimed'} end
local reserved = tonumber(a[3] or '0')
local cost = tonumber(ARGV[10]) or 0
-- the balance never goes below zero: a call never costs more than what was reserved for it
if reserved > 0 and cost > reserved then cost = reserved end

redis.call('HSET', K.attempt, 'state', ARGV[5], 'reason', ARGV[6], 'answered_by', ARGV[8],
  'duration_s', ARGV[9], 'cost', cost, 'error_code', ARGV[11], 'ended_at', ARGV[12], 'reserved', 0, 'live', '0',
  'permanent', ARGV[17])
if ARGV[4] ~= '' then redis.call('HSET', K.attempt, 'sid', ARGV[4]) end
for _, set in ipairs({K.checks, K.checks_leased, K.leased, K.due, K.provider_waiting, K.account_waiting, K.parked}) do
  redis.call('ZREM', set, ref)
end

-- (0 - x, not -x: Lua 5.1 prints -0 as "-0", which HINCRBY refuses)
if reserved > 0 then redis.call('HINCRBY', K.account, 'reserved', 0 - reserved) end
if cost > 0 then redis.call('HINCRBY', K.account, 'balance', 0 - cost) end
if reserved > 0 or cost > 0 then wake(K.account_waiting, K.due, now, -1) end
if a[4] == '1' then
  redis.call('HINCRBY', K.provider_state, 'live', -1)
end
-- a freed slot, or a wake this attempt may have received, goes to the next waiter
wake(K.provider_waiting, K.due, now, 1)

if was_live then
  redis.call('HINCRBY', K.campaign, 'dialing', -1)
else
  redis.call('HINCRBY', K.campaign, 'scheduled', -1)
end
redis.call('HINCRBY', K.campaign, 'cost', cost)
redis.call('HINCRBY', K.stats, 'outcome|' .. ARGV[18] .. '|' .. ARGV[5], 1)
if cost > 0 then redis.call('HINCRBY', K.stats, 'settled|' .. ARGV[18], cost) end
local outcome = ARGV[7]
if outcome == 'recall' and not OPEN[redis.call('HGET', K.campaign, 'status')] then
  outcome = 'failed'  -- stopping, stopped, cancelled: no new attempt
end
if outcome == 'recall' then
  write_attempt(K.next_attempt, K.due, K.campaign_attempts, ARGV[13], ARGV[14], ARGV[15], ARGV[16])
  redis.call('HINCRBY', K.campaign, 'scheduled', 1)
  redis.call('HINCRBY', K.campaign, 'recalls', 1)
else
  redis.call('HINCRBY', K.campaign, outcome, 1)
end
return {'ok', maybe_complete(K.campaign, now)}
