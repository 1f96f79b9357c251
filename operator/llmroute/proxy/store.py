"""Shared-store rate limiting: GCRA counters in Redis, updated by atomic server-side Lua scripts.

Why GCRA rather than a sliding window: one number per limiter (the theoretical arrival time, TAT), O(1)
work per check, exact rates with a bounded burst, and the clock is Redis's own (``TIME``) so replicas with
skewed clocks agree. All the checks of one request are evaluated and committed in one script call
(all-or-nothing), like Envoy's and LiteLLM's global limiters do with their own algorithms.

Each TAT is stored with the interval (``60 / limit``) it is counted in, under a second key: a changed limit
carries the counter over as the same units used, as the local limiters do
(:meth:`llmroute.proxy.limits.LocalLimiter.rescale`). A TAT without one (written by an earlier release) is
read as counted in the current interval.

The clock is Redis's ``TIME`` made monotonic per route: the latest time a script saw is kept under one
more key with the step the clock has been put forward by, and a ``TIME`` behind it (the server's clock
stepped back, or a failover to a replica whose clock is behind) continues from there instead. Each TAT is
an absolute time, so a clock ten minutes behind would otherwise put every counter ten minutes in debt:
every request of every limited tier refused until the clock caught up. A clock that steps forward frees
the counters early, at most once (the store's exactness for one window, as a restart of Redis would).

If Redis is unreachable or slow, the request is decided by the local per-replica share instead (never
unlimited, never an error), the fallback is exported as a metric, and Redis is probed again with backoff
(one probe at a time) until it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmroute.core.gcra import BURST_SECONDS, LimitCheck, params, status
from llmroute.proxy.limits import Verdict

log = logging.getLogger("llmroute.proxy.store")

TIMEOUT_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 5.0

# The route's clock (KEYS[#KEYS], a hash): Redis's TIME plus the step it has been put forward by ('skew'),
# never behind the latest time seen ('last'). A step back of a millisecond or less (the rounding of 'last')
# holds the clock still instead of growing the skew.
CLOCK = """
local function clock(key)
  local t = redis.call('TIME')
  local skew = tonumber(redis.call('HGET', key, 'skew') or '0')
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 + skew
  if now < last then
    if last - now > 0.001 then skew = skew + (last - now) end
    now = last
  end
  redis.call('HSET', key, 'last', string.format('%.6f', now), 'skew', string.format('%.6f', skew))
  return now
end
"""

# KEYS: one per check, then for each check the key of the interval its TAT is counted in, then the route's
# clock. ARGV: per check (interval, tau, cost, strict). Returns {allowed, now, retry_after, tat_1..tat_n} as
# strings (Lua numbers would be truncated to integers). A TAT counted in another interval (the limit
# changed) is first carried over as the same units used, as
# :meth:`llmroute.proxy.limits.LocalLimiter.rescale` does, and kept so.
ADMIT = (
    CLOCK
    + """
local now = clock(KEYS[#KEYS])
local n = (#KEYS - 1) / 2
local tats, news = {}, {}
local retry = 0
for i = 1, n do
  local interval = tonumber(ARGV[4*i-3])
  local tau = tonumber(ARGV[4*i-2])
  local cost = tonumber(ARGV[4*i-1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local was = tonumber(redis.call('GET', KEYS[n+i]) or '0')
  if tat > now and was > 0 and interval > 0 and was ~= interval then
    local debt = tat - now
    local moved = debt * interval / was
    if interval > was then moved = math.min(moved, math.max(debt, 60)) end
    tat = now + moved
    local ttl = math.ceil(moved * 1000) + 1000
    redis.call('SET', KEYS[i], string.format('%.6f', tat), 'PX', ttl)
    redis.call('SET', KEYS[n+i], ARGV[4*i-3], 'PX', ttl)
  end
  tats[i] = tat
  local base = math.max(tat, now)
  local new_tat = base + cost * interval
  local allow_at = base - tau
  if ARGV[4*i] == '1' then allow_at = new_tat - tau end
  if interval <= 0 then allow_at = now + 60 end
  if allow_at > now + 0.000000001 then retry = math.max(retry, allow_at - now) end
  news[i] = new_tat
end
local out = {'0', string.format('%.6f', now), string.format('%.6f', retry)}
if retry > 0 then
  for i = 1, n do out[3+i] = string.format('%.6f', tats[i]) end
  return out
end
out[1] = '1'
for i = 1, n do
  local ttl = math.ceil((news[i] - now) * 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.6f', news[i]), 'PX', ttl)
  redis.call('SET', KEYS[n+i], ARGV[4*i-3], 'PX', ttl)
  out[3+i] = string.format('%.6f', news[i])
end
return out
"""
)

# KEYS: the checks to correct, then their interval keys, then the route's clock. ARGV: per key, the
# correction in seconds of TAT (negative refunds), the interval it is counted in (the admitting limit's;
# the TAT's may differ since) and the TAT the admission left ('0': unknown). A charge on a counter that
# expired meanwhile (its debt paid while the request ran) counts from that TAT, the least the counter
# can have been since: lost with the counter, a long request's usage beyond its estimate went uncharged.
CORRECT = (
    CLOCK
    + """
local now = clock(KEYS[#KEYS])
local n = (#KEYS - 1) / 2
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local delta = tonumber(ARGV[3*i-2])
  local interval = tonumber(ARGV[3*i-1])
  if tat <= 0 and delta > 0 then
    tat = tonumber(ARGV[3*i])
    redis.call('SET', KEYS[n+i], ARGV[3*i-1], 'PX', 1000)
  end
  if tat > 0 then
    local was = tonumber(redis.call('GET', KEYS[n+i]) or '0')
    if was > 0 and interval > 0 and was ~= interval then delta = delta * was / interval end
    local new_tat = math.max(now, tat + delta)
    if new_tat > now then
      local ttl = math.ceil((new_tat - now) * 1000) + 1000
      redis.call('SET', KEYS[i], string.format('%.6f', new_tat), 'PX', ttl)
      redis.call('PEXPIRE', KEYS[n+i], ttl)
    else
      redis.call('DEL', KEYS[i], KEYS[n+i])
    end
  end
end
return 1
"""
)

ERRORS = (RedisError, OSError, TimeoutError, asyncio.TimeoutError, ValueError, IndexError)


class SharedLimiter:
    """Redis-backed limiter; ``on_state(down)`` is told whenever the fallback starts or ends."""

    def __init__(self, url: str, password: str | None, route: str, on_state: Callable[[bool], None]):
        self.url = url
        self.password = password
        self._client = aioredis.Redis.from_url(
            url, password=password, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._admit = self._client.register_script(ADMIT)
        self._correct = self._client.register_script(CORRECT)
        self._prefix = f"llmroute:{{{route}}}:"
        self.clock_key = self._prefix + "clock"  # check keys all hold a '|': no check key is this one
        self._on_state = on_state
        self.down = False
        self._retry_at = 0.0
        self._backoff = 0.5
        self._probing = False
        self.errors = 0

    def available(self, now: float) -> bool:
        """Whether to try Redis for this request (False while in fallback, except for one probe)."""
        if not self.down:
            return True
        if self._probing or now < self._retry_at:
            return False
        self._probing = True
        return True

    async def admit(self, checks: tuple[LimitCheck, ...], now: float) -> Verdict | None:
        """The shared verdict, or ``None`` if the store failed (the caller then decides locally)."""
        if not checks:
            return Verdict(True, 0.0, checks, shared=True)
        args: list[str] = []
        for check in checks:
            interval, tau = params(check.limit) if check.limit > 0 else (0.0, BURST_SECONDS)
            args += [repr(interval), repr(tau), repr(check.cost), "1" if check.strict else "0"]
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS * 2):
                raw = await self._admit(keys=self._keys(checks), args=args)
            allowed, server_now, retry = raw[0] == b"1", float(raw[1]), float(raw[2])
            tats = [float(x) for x in raw[3 : 3 + len(checks)]]
        except ERRORS as exc:
            self._failed(now, exc)
            return None
        self._recovered()
        statuses = [status(c, t, server_now) for c, t in zip(checks, tats, strict=True)]
        return Verdict(allowed, retry, checks, statuses, shared=True, tats=tuple(tats) if allowed else ())

    async def correct(
        self,
        checks: tuple[LimitCheck, ...],
        delta_tokens: float,
        now: float,
        delta_requests: float = 0.0,
        admitted: Sequence[float] = (),
    ) -> None:
        """Charge (or refund, if negative) ``delta_tokens`` on the token checks and ``delta_requests`` on
        the request checks; ``admitted`` are the TATs the admission left (:attr:`Verdict.tats`), the base
        of a charge on a counter that has expired since."""
        bases = list(admitted) + [0.0] * (len(checks) - len(admitted))
        deltas = [
            (c, delta_tokens if c.kind == "tokens" else delta_requests, base)
            for c, base in zip(checks, bases, strict=True)
            if c.limit > 0
        ]
        deltas = [(c, d, base) for c, d, base in deltas if d != 0]
        if not deltas or self.down:
            return
        keys = self._keys(tuple(c for c, _, _ in deltas))
        args: list[str] = []
        for c, d, base in deltas:
            interval = params(c.limit)[0]
            args += [repr(d * interval), repr(interval), f"{base:.6f}"]
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS * 2):
                await self._correct(keys=keys, args=args)
        except ERRORS as exc:
            self._failed(now, exc)

    def _keys(self, checks: tuple[LimitCheck, ...]) -> list[str]:
        """The checks' TAT keys, then the keys of the intervals those TATs are counted in, then the
        route's clock."""
        keys = [self._prefix + c.key for c in checks]
        return [*keys, *(key + "|i" for key in keys), self.clock_key]

    def _failed(self, now: float, exc: BaseException) -> None:
        self.errors += 1
        self._probing = False
        if not self.down:
            log.warning("rate-limit store %s unreachable (%s); using the local share", self._safe_url, exc)
            self.down = True
            self._backoff = 0.5
            self._on_state(True)
        else:
            self._backoff = min(MAX_BACKOFF_SECONDS, self._backoff * 2)
        self._retry_at = now + self._backoff

    def _recovered(self) -> None:
        self._probing = False
        if self.down:
            log.warning("rate-limit store %s is back; enforcing the global limits again", self._safe_url)
            self.down = False
            self._on_state(False)

    @property
    def _safe_url(self) -> str:
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    async def close(self) -> None:
        await self._client.aclose()
