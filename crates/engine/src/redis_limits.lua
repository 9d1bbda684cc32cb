-- The cluster-wide charge of a request's rate limits (SPEC §11.1): latchkey_core::ratelimit's
-- `charge_all` (GCRA, all or none) run inside Redis, so every node charges the same state and a
-- request's limits cost one round trip. Redis runs a script atomically: no other charge sees a
-- half-written request.
--
-- KEYS[i]      limit i's TAT (theoretical arrival time): nanoseconds on the clock `now` is read
--              from, as a decimal integer. Absent = at rest.
-- ARGV[2i-1]   limit i's capacity_ns (limit · T).
-- ARGV[2i]     limit i's increment_ns (cost · T, saturated to u64 by the caller; 0 only reads).
-- ARGV[2n+1]   optional `now` in ns (tests). Absent or empty: Redis's own TIME, so the nodes'
--              clocks never matter.
-- Returns      {now, allowed_1, tat_1, ..., allowed_n, tat_n}, all decimal strings ("1"/"0").
--              The caller reads remaining, reset and retry-after off (tat, now) with core's
--              arithmetic (`Rate::standing`), so that arithmetic exists once.
--
-- Numbers: Lua 5.1's numbers are doubles, exact only up to 2^53 ≈ 9.0e15. A unix time in ns
-- (≈ 1.8e18) and a 366-day window in ns (≈ 3.2e16) are both past that, and microseconds would
-- not do either: T = window / limit is rounded up to the ns in core, and a µs TAT would admit or
-- refuse differently from the local limiter at the edges. So each quantity is kept exactly as two
-- parts, whole seconds and nanoseconds (0 ≤ ns < 1e9, seconds < 2e10 for any u64), and is only
-- added, subtracted and compared here: no product or quotient is formed (cost · T arrives
-- ready-made), so every intermediate value is an integer far below 2^53.

local NS = 1000000000

-- A decimal u64 → (seconds, nanoseconds).
local function split(text)
  local len = #text
  if len <= 9 then
    return 0, tonumber(text)
  end
  return tonumber(string.sub(text, 1, len - 9)), tonumber(string.sub(text, len - 8))
end

local function argument(text)
  if type(text) ~= 'string' or not string.find(text, '^%d+$') then
    error('latchkey: an argument is not a decimal integer')
  end
  return split(text)
end

-- A stored TAT. Anything but digits (a key written by something else) reads as rest and is
-- overwritten by the next charge, rather than failing every request that touches it.
local function stored(value)
  if type(value) ~= 'string' or not string.find(value, '^%d+$') then
    return 0, 0
  end
  return split(value)
end

local function show(s, n)
  if s == 0 then
    return string.format('%d', n)
  end
  return string.format('%d%09d', s, n)
end

local function add(as, an, bs, bn)
  local s, n = as + bs, an + bn
  if n >= NS then
    return s + 1, n - NS
  end
  return s, n
end

-- a − b, or 0 when b ≥ a (u64::saturating_sub, as core does).
local function sub(as, an, bs, bn)
  if as < bs or (as == bs and an <= bn) then
    return 0, 0
  end
  local s, n = as - bs, an - bn
  if n < 0 then
    return s - 1, n + NS
  end
  return s, n
end

local function greater(as, an, bs, bn)
  return as > bs or (as == bs and an > bn)
end

local count = #KEYS
local now_s, now_n
local given = ARGV[2 * count + 1]
if given ~= nil and given ~= '' then
  now_s, now_n = argument(given)
else
  local time = redis.call('TIME')
  now_s, now_n = tonumber(time[1]), tonumber(time[2]) * 1000
end

-- Working TATs by key: a key named twice in one request sees its own earlier charge, as one
-- Limiter charged twice by `charge_all` does.
local tat_s, tat_n = {}, {}
for i = 1, count do
  local key = KEYS[i]
  if tat_s[key] == nil then
    tat_s[key], tat_n[key] = stored(redis.call('GET', key))
  end
end

local capacity_s, capacity_n, increment_s, increment_n = {}, {}, {}, {}
for i = 1, count do
  capacity_s[i], capacity_n[i] = argument(ARGV[2 * i - 1])
  increment_s[i], increment_n[i] = argument(ARGV[2 * i])
end

-- Limiter::charge: passes when max(TAT, now) + increment − now ≤ capacity, and moves TAT there.
local allowed, at_s, at_n = {}, {}, {}
local refused = nil
for i = 1, count do
  local key = KEYS[i]
  local ts, tn = tat_s[key], tat_n[key]
  local used_s, used_n = sub(ts, tn, now_s, now_n)
  local next_s, next_n = add(used_s, used_n, increment_s[i], increment_n[i])
  if greater(next_s, next_n, capacity_s[i], capacity_n[i]) then
    refused = i
    allowed[i], at_s[i], at_n[i] = '0', ts, tn
    break
  end
  if increment_s[i] > 0 or increment_n[i] > 0 then
    ts, tn = add(now_s, now_n, next_s, next_n)
    tat_s[key], tat_n[key] = ts, tn
  end
  allowed[i], at_s[i], at_n[i] = '1', ts, tn
end

if refused then
  -- charge_all's refund, in its order: each earlier limit gives its charge back and reports
  -- its standing right after. Only the working copies change: nothing is written.
  for j = 1, refused - 1 do
    local key = KEYS[j]
    tat_s[key], tat_n[key] = sub(tat_s[key], tat_n[key], increment_s[j], increment_n[j])
    at_s[j], at_n[j] = tat_s[key], tat_n[key]
  end
  -- Limits after the refused one are read, not charged: would `cost` fit? (remaining ≥ cost is
  -- free capacity ≥ cost · T, which needs no division.)
  for k = refused + 1, count do
    local key = KEYS[k]
    local used_s, used_n = sub(tat_s[key], tat_n[key], now_s, now_n)
    local free_s, free_n = sub(capacity_s[k], capacity_n[k], used_s, used_n)
    if greater(increment_s[k], increment_n[k], free_s, free_n) then
      allowed[k] = '0'
    else
      allowed[k] = '1'
    end
    at_s[k], at_n[k] = tat_s[key], tat_n[key]
  end
else
  -- Every limit passed: write each charged key once, expiring when it is at rest again (its
  -- TAT), so idle limits leave Redis by themselves. A key absent is a key at rest.
  local written = {}
  for i = 1, count do
    local key = KEYS[i]
    if not written[key] and (increment_s[i] > 0 or increment_n[i] > 0) then
      written[key] = true
      local used_s, used_n = sub(tat_s[key], tat_n[key], now_s, now_n)
      -- Rounded up to the millisecond: a key may outlive its rest by < 1 ms, never the reverse.
      local ttl_ms = used_s * 1000 + math.ceil(used_n / 1000000)
      if ttl_ms < 1 then
        ttl_ms = 1
      end
      redis.call('SET', key, show(tat_s[key], tat_n[key]), 'PX', string.format('%d', ttl_ms))
    end
  end
end

local reply = { show(now_s, now_n) }
for i = 1, count do
  reply[2 * i] = allowed[i]
  reply[2 * i + 1] = show(at_s[i], at_n[i])
end
return reply
