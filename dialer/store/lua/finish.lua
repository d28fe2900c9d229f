-- finish: the one path by which an attempt ends (provider outcome, dial error, skip, cancel):
-- settles money idempotently (CAS on the attempt's state), frees the live slot, updates the counters,
-- writes the recall attempt when one is due, and completes the campaign when nothing is left.
-- KEYS[1] attempt  KEYS[2] campaign  KEYS[3] provider state  KEYS[4] account  KEYS[5] live zset
-- KEYS[6] leased zset  KEYS[7] due zset  KEYS[8] provider waiting  KEYS[9] account waiting
-- KEYS[10] next attempt hash  KEYS[11] campaign attempts zset  KEYS[12] campaign parked zset
-- ARGV[1] now  ARGV[2] ref  ARGV[3] allowed current states (comma list)  ARGV[4] sid ('' = any)
-- ARGV[5] final state  ARGV[6] reason  ARGV[7] outcome: delivered|failed|skipped|recall
-- ARGV[8] answered_by  ARGV[9] duration_s  ARGV[10] cost (units)  ARGV[11] error_code  ARGV[12] ended_at
-- ARGV[13] recall: next ref  ARGV[14] its due_at  ARGV[15] its order score  ARGV[16] its JSON
-- ARGV[17] '1' when the failure is permanent (never re-executed)
-- Returns {'ok', campaign status} or {'stale', attempt state}.
local now = tonumber(ARGV[1])
local ref = ARGV[2]
local a = redis.call('HMGET', KEYS[1], 'state', 'sid', 'reserved', 'live')
if not a[1] or not is_member(ARGV[3], a[1]) then return {'stale', a[1] or 'missing'} end
if ARGV[4] ~= '' and a[2] and a[2] ~= '' and a[2] ~= ARGV[4] then return {'stale', 'other_call'} end
local was_live = (a[1] == 'dialing' or a[1] == 'queued' or a[1] == 'ringing' or a[1] == 'in-progress')
-- an attempt that never went live is ended only by the holder of its claim
if not was_live and not redis.call('ZSCORE', KEYS[6], ref) then return {'stale', 'unclaimed'} end
local reserved = tonumber(a[3] or '0')
local cost = tonumber(ARGV[10]) or 0
-- the balance never goes below zero: a call never costs more than what was reserved for it
if reserved > 0 and cost > reserved then cost = reserved end

redis.call('HSET', KEYS[1], 'state', ARGV[5], 'reason', ARGV[6], 'answered_by', ARGV[8],
  'duration_s', ARGV[9], 'cost', cost, 'error_code', ARGV[11], 'ended_at', ARGV[12], 'reserved', 0, 'live', '0',
  'permanent', ARGV[17])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'sid', ARGV[4]) end
for _, set in ipairs({KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[12]}) do
  redis.call('ZREM', set, ref)
end

-- (0 - x, not -x: Lua 5.1 prints -0 as "-0", which HINCRBY refuses)
if reserved > 0 then redis.call('HINCRBY', KEYS[4], 'reserved', 0 - reserved) end
if cost > 0 then redis.call('HINCRBY', KEYS[4], 'balance', 0 - cost) end
if reserved > 0 or cost > 0 then wake(KEYS[9], KEYS[7], now, -1) end
if a[4] == '1' then
  redis.call('HINCRBY', KEYS[3], 'live', -1)
end
-- a freed slot, or a wake this attempt may have received, goes to the next waiter
wake(KEYS[8], KEYS[7], now, 1)

if was_live then
  redis.call('HINCRBY', KEYS[2], 'dialing', -1)
else
  redis.call('HINCRBY', KEYS[2], 'scheduled', -1)
end
redis.call('HINCRBY', KEYS[2], 'cost', cost)
local outcome = ARGV[7]
local status = redis.call('HGET', KEYS[2], 'status')
if outcome == 'recall' and status ~= 'running' and status ~= 'paused' and status ~= 'scheduled' then
  outcome = 'failed'  -- stopping, stopped, cancelled: no new attempt
end
if outcome == 'recall' then
  write_attempt(KEYS[10], KEYS[7], KEYS[11], ARGV[13], ARGV[14], ARGV[15], ARGV[16])
  redis.call('HINCRBY', KEYS[2], 'scheduled', 1)
  redis.call('HINCRBY', KEYS[2], 'recalls', 1)
else
  redis.call('HINCRBY', KEYS[2], outcome, 1)
end
return {'ok', maybe_complete(KEYS[2], now)}
