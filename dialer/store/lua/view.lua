-- view: what one dial or one check needs, in one round trip (reads only): the attempt, its campaign, its
-- contact (when asked), the document of the provider it most likely dials through, and whether the
-- attempt's number is on the account's do-not-call list.
-- KEYS: attempt campaign contacts provider dnc
-- ARGV[1] the contact's index ('' = not needed)
-- Returns {} when the attempt does not exist, else {attempt fields, campaign fields, contact, provider
-- doc, on the DNC list (0/1)} (fields as flat name/value lists; '' for a missing contact or provider).
local att = redis.call('HGETALL', K.attempt)
if #att == 0 then return {} end
local contact = ''
if ARGV[1] ~= '' then contact = redis.call('LINDEX', K.contacts, tonumber(ARGV[1])) or '' end
local dnc = 0
for i = 1, #att, 2 do
  if att[i] == 'phone' then dnc = redis.call('SISMEMBER', K.dnc, att[i + 1]) end
end
return {att, redis.call('HGETALL', K.campaign), contact, redis.call('HGET', K.provider, 'doc') or '', dnc}
