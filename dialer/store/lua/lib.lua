-- lib: helpers prepended to every script of the store (Redis 6.2 Lua has no modules), after the generated
-- prelude (states, transitions, constants) and the script's own key table K (from its `-- KEYS:` line).
-- Callers pass every key through KEYS and the time through ARGV (scripts never call TIME).

-- A campaign's state for commands: its status, or 'deleted' once soft-deleted (kept for reports only).
local function status_of(campaign)
  local s = redis.call('HMGET', campaign, 'status', 'deleted_at')
  if s[2] and s[2] ~= '' then return 'deleted' end
  return s[1]
end

-- Completes (or stops) a campaign whose every contact is final: nothing scheduled, nothing live,
-- expansion done, and `end_handle` not `continue`. Returns the campaign's status after the check.
local function maybe_complete(campaign, now)
  local c = redis.call('HMGET', campaign, 'status', 'expanded', 'scheduled', 'dialing', 'end_handle')
  local status = c[1]
  local idle = tonumber(c[3] or '0') <= 0 and tonumber(c[4] or '0') <= 0
  if status == 'running' and idle and c[2] == '1' and c[5] ~= 'continue' then
    redis.call('HSET', campaign, 'status', 'completed', 'status_reason', '', 'updated_at', now)
    return 'completed'
  end
  -- stopping: over once nothing is live or still held by a worker (expansion may never have finished)
  if status == 'stopping' and idle then
    redis.call('HSET', campaign, 'status', 'stopped', 'status_reason', '', 'updated_at', now)
    return 'stopped'
  end
  return status or ''
end

-- Moves up to `n` refs (n < 0: all) from a waiting set back into due at `now`.
local function wake(waiting, due, now, n)
  local refs
  if n < 0 then
    refs = redis.call('ZRANGE', waiting, 0, -1)
  else
    refs = redis.call('ZRANGE', waiting, 0, n - 1)
  end
  for _, r in ipairs(refs) do
    redis.call('ZREM', waiting, r)
    redis.call('ZADD', due, now, r)
  end
  return #refs
end

local function is_member(csv, value)
  for item in string.gmatch(csv, '[^,]+') do
    if item == value then return true end
  end
  return false
end

-- The attempt key of a ref (ACCOUNT|KEY).
local function key_of(ref)
  return string.sub(ref, string.find(ref, '|', 1, true) + 1)
end

-- Writes a new attempt (one HSET of the fields of a JSON object; nulls skipped) and puts it in due and in
-- the campaign's attempts. Returns false when it already exists (a repeated run changes nothing).
local function write_attempt(h, due, attempts, ref, due_at, score, json)
  if redis.call('EXISTS', h) == 1 then return false end
  local fields = cjson.decode(json)
  local args = {}
  for k, v in pairs(fields) do
    if v ~= cjson.null then
      args[#args + 1] = k
      args[#args + 1] = tostring(v)
    end
  end
  redis.call('HSET', h, unpack(args))
  redis.call('ZADD', due, due_at, ref)
  redis.call('ZADD', attempts, score, key_of(ref))
  return true
end

-- Writes a contact's first attempt: its number, due time and state (the rest is said by its key or is a
-- default). Returns false when it already exists.
local function write_first(h, due, attempts, ref, due_at, score, phone)
  if redis.call('EXISTS', h) == 1 then return false end
  redis.call('HSET', h, 'phone', phone, 'due_at', due_at, 'state', 'scheduled')
  redis.call('ZADD', due, due_at, ref)
  redis.call('ZADD', attempts, score, key_of(ref))
  return true
end

-- Moves every attempt parked in the campaign (it was paused or not launched) back into due.
local function release_parked(parked, due, now)
  local refs = redis.call('ZRANGE', parked, 0, -1, 'WITHSCORES')
  for i = 1, #refs, 2 do
    redis.call('ZADD', due, math.max(now, tonumber(refs[i + 1])), refs[i])
  end
  redis.call('DEL', parked)
end

-- Moves claims back to be claimed again at `now`: the expired ones (`members` nil: up to `limit`) or the
-- given members that are still leased; counted as `released|WHY` in the stats. Returns the members moved.
local function release_leases(leased, due, stats, now, limit, why, members)
  if not members then
    members = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, limit)
  else
    local held = {}
    for _, m in ipairs(members) do
      if redis.call('ZSCORE', leased, m) then held[#held + 1] = m end
    end
    members = held
  end
  for _, m in ipairs(members) do
    redis.call('ZREM', leased, m)
    redis.call('ZADD', due, now, m)
  end
  if #members > 0 then redis.call('HINCRBY', stats, 'released|' .. why, #members) end
  return members
end
