-- settle_status: completes / stops a campaign whose every contact is final (after a stop or a cancel).
-- KEYS[1] campaign hash   ARGV[1] now (ms)
-- Returns the campaign's status.
return maybe_complete(KEYS[1], tonumber(ARGV[1]))
