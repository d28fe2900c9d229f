-- expand: writes one chunk of a campaign's first attempts (idempotent: applies only at the expected
-- cursor, so a redelivered start_campaign resumes where the last run stopped).
-- KEYS: campaign due campaign_attempts attempt...
-- ARGV[1] now  ARGV[2] expected cursor  ARGV[3] new cursor  ARGV[4] '1' when this is the last chunk
-- ARGV[5..] per attempt, 4 values: ref, due_at, order score, phone
-- Returns {'ok'|'stale', campaign status}.
local now = tonumber(ARGV[1])
local cursor = redis.call('HGET', K.campaign, 'expand_cursor') or '0'
if cursor ~= ARGV[2] then
  return {'stale', redis.call('HGET', K.campaign, 'status') or ''}
end
local created = 0
local n = (#ARGV - 4) / 4
local status = redis.call('HGET', K.campaign, 'status') or ''
if status ~= 'running' and status ~= 'paused' and status ~= 'scheduled' then
  n = 0  -- stopped or cancelled meanwhile: the rest of the contacts get no attempts
end
for i = 0, n - 1 do
  local base = 5 + i * 4
  if write_first(KEYS[NK + 1 + i], K.due, K.campaign_attempts, ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]) then
    created = created + 1
  end
end
redis.call('HINCRBY', K.campaign, 'scheduled', created)
redis.call('HSET', K.campaign, 'expand_cursor', ARGV[3])
if ARGV[4] == '1' then
  redis.call('HSET', K.campaign, 'expanded', '1')
  status = maybe_complete(K.campaign, now)
end
return {'ok', status}
