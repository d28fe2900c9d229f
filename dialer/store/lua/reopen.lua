-- reopen: re-execute / redial — a completed or stopped campaign runs again with one new attempt per
-- chosen contact (each contact moves from the counter of its last outcome back to `scheduled`).
-- KEYS[1] campaign hash  KEYS[2] due zset  KEYS[3] campaign attempts zset  KEYS[4..] new attempt hashes
-- ARGV[1] now  ARGV[2] allowed current statuses (comma list)
-- ARGV[3..] per attempt, 5 values: ref, due_at, order score, attempt JSON, counter it leaves
-- Returns {'ok', attempts created} or {'refused', current status}.
local now = tonumber(ARGV[1])
local cur = status_of(KEYS[1])
if not cur or not is_member(ARGV[2], cur) then return {'refused', cur or 'missing'} end
local created = 0
local n = (#ARGV - 2) / 5
for i = 0, n - 1 do
  local base = 3 + i * 5
  if write_attempt(KEYS[4 + i], KEYS[2], KEYS[3], ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]) then
    redis.call('HINCRBY', KEYS[1], ARGV[base + 4], -1)
    redis.call('HINCRBY', KEYS[1], 'scheduled', 1)
    created = created + 1
  end
end
if created > 0 then
  redis.call('HSET', KEYS[1], 'status', 'running', 'status_reason', '', 'updated_at', now)
end
return {'ok', created}
