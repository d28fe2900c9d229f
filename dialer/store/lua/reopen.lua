-- reopen: re-execute / redial — a completed or stopped campaign runs again with one new attempt per
-- chosen contact (each contact moves from the counter of its last outcome back to `scheduled`).
-- KEYS: campaign due campaign_attempts attempt...
-- ARGV[1] now  ARGV[2] the command (re-execute | redial) or 'continue' (a later chunk: the campaign must still
-- be running or paused after the first chunk opened it)
-- ARGV[3..] per attempt, 5 values: ref, due_at, order score, attempt JSON, counter it leaves
-- Returns {'ok', attempts created} or {'refused', current status}.
local now = tonumber(ARGV[1])
local cur = status_of(K.campaign)
local ok
if ARGV[2] == 'continue' then
  ok = cur == 'running' or cur == 'paused' or TRANSITIONS['re-execute'][cur]
else
  ok = TRANSITIONS[ARGV[2]][cur]
end
if not cur or not ok then return {'refused', cur or 'missing'} end
local created = 0
local n = (#ARGV - 2) / 5
for i = 0, n - 1 do
  local base = 3 + i * 5
  if write_attempt(KEYS[NK + 1 + i], K.due, K.campaign_attempts, ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]) then
    redis.call('HINCRBY', K.campaign, ARGV[base + 4], -1)
    redis.call('HINCRBY', K.campaign, 'scheduled', 1)
    created = created + 1
  end
end
if created > 0 then
  redis.call('HSET', K.campaign, 'status', 'running', 'status_reason', '', 'updated_at', now)
end
return {'ok', created}
