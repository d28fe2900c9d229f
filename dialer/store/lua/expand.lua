-- expand: writes one chunk of a campaign's first attempts (idempotent: applies only at the expected
-- cursor, so a redelivered start_campaign resumes where the last run stopped).
-- KEYS[1] campaign hash  KEYS[2] due zset  KEYS[3] campaign attempts zset  KEYS[4..] attempt hashes
-- ARGV[1] now  ARGV[2] expected cursor  ARGV[3] new cursor  ARGV[4] '1' when this is the last chunk
-- ARGV[5..] per attempt, 4 values: ref, due_at, order score, attempt JSON
-- Returns {'ok'|'stale', campaign status}.
local now = tonumber(ARGV[1])
local cursor = redis.call('HGET', KEYS[1], 'expand_cursor') or '0'
if cursor ~= ARGV[2] then
  return {'stale', redis.call('HGET', KEYS[1], 'status') or ''}
end
local created = 0
local n = (#ARGV - 4) / 4
local status = redis.call('HGET', KEYS[1], 'status') or ''
if status ~= 'running' and status ~= 'paused' and status ~= 'scheduled' then
  n = 0  -- stopped or cancelled meanwhile: the rest of the contacts get no attempts
end
for i = 0, n - 1 do
  local base = 5 + i * 4
  if write_attempt(KEYS[4 + i], KEYS[2], KEYS[3], ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]) then
    created = created + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'scheduled', created)
redis.call('HSET', KEYS[1], 'expand_cursor', ARGV[3])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'expanded', '1')
  status = maybe_complete(KEYS[1], now)
end
return {'ok', status}
