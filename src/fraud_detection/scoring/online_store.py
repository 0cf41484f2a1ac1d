"""``RedisWindows``: the window state scorer processes share, in Redis sorted sets.

With several scorer processes in one consumer group, each owns some partitions of the
transactions topic (keyed by customer), so each holds its own customers' windows. The
windows keyed by something else (terminal activity, the delayed terminal and category
risk) must see every customer's rows: they live here, one sorted set per key and kind,
scored by event time (ms) with the transaction id as member:

- ``<namespace>:<aggregation>:n:<key>``: the rows (``count`` aggregations);
- ``<namespace>:<aggregation>:l:<key>`` / ``...:f:<key>``: the labelled and the
  fraudulent rows (``fraud`` aggregations), added when the label is known.

A batch is two Lua scripts (each atomic, one round trip). The first adds its rows (an
id already there stays once, so replays and redeliveries change nothing) and the labels
that came with them; the second reads each row's window counts over the bounds of
``OnlineFeatures``: ``(max(t - w, cutoff), t]`` up to the row itself (rows of the same
millisecond are ordered by transaction id), and ``(max(t - delay - w, cutoff), t -
delay]`` for labels. Rows older than the cutoff less ``evict_margin_ms`` are removed as
keys are written, and every key expires ``ttl_ms`` after its last write, so the store
stays as flat as the local state.

What a row sees is what the processes wrote before its read. To see every row older
than it, as ``create_features`` does, a process marks (``mark``) its partitions as
written up to its batch's newest time, between its write and its read
(``before_read``), and waits (``wait_for``, at most ``align_timeout``) until the other
processes' partitions are marked at least as far: partitions are in time order, so
every older row they had received is written by then (per process, what one process
reading every partition gives: rows in arrival order). Writing before waiting means the
process whose batch is the oldest never waits, so no two processes wait for each other.
A batch that waited the whole timeout (an idle or dead partition) is read with what is
there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fraud_detection.features.online import SharedAggregation, SharedRows

# Both scripts: KEYS per row (per count aggregation its key, per fraud aggregation its
# labelled and fraudulent keys); ARGV: ttl, eviction margin, rows, the count and fraud
# aggregations' shapes, then per row: id, time, cutoff, label (-1 unknown).
_HEADER = """
local ttl, margin = tonumber(ARGV[1]), tonumber(ARGV[2])
local nrows, ncnt, nfr = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
local cw, fd, fw = {}, {}, {}
for c = 1, ncnt do
  local k = tonumber(ARGV[a]); a = a + 1
  local ws = {}
  for j = 1, k do ws[j] = tonumber(ARGV[a]); a = a + 1 end
  cw[c] = ws
end
for c = 1, nfr do
  fd[c] = tonumber(ARGV[a]); a = a + 1
  local k = tonumber(ARGV[a]); a = a + 1
  local ws = {}
  for j = 1, k do ws[j] = tonumber(ARGV[a]); a = a + 1 end
  fw[c] = ws
end
local per_row = ncnt + 2 * nfr
"""

# Adds every row (an id already there stays once) and the labels that came with them.
_WRITE = (
    _HEADER
    + """
for r = 0, nrows - 1 do
  local tid, t = ARGV[a], string.format('%d', tonumber(ARGV[a + 1]))
  local old = string.format('%d', tonumber(ARGV[a + 2]) - margin)
  local label = tonumber(ARGV[a + 3])
  a = a + 4
  local base = r * per_row
  for c = 1, ncnt do
    local key = KEYS[base + c]
    redis.call('ZADD', key, t, tid)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', old)
    redis.call('PEXPIRE', key, ttl)
  end
  if label >= 0 then
    for c = 1, nfr do
      local lk, fk = KEYS[base + ncnt + 2 * c - 1], KEYS[base + ncnt + 2 * c]
      redis.call('ZADD', lk, t, tid)
      redis.call('ZREMRANGEBYSCORE', lk, '-inf', old)
      redis.call('PEXPIRE', lk, ttl)
      if label == 1 then
        redis.call('ZADD', fk, t, tid)
        redis.call('ZREMRANGEBYSCORE', fk, '-inf', old)
        redis.call('PEXPIRE', fk, ttl)
      end
    end
  end
end
return 0
"""
)

# Each row's window counts: (max(t - w, cutoff), t) and, of the rows at t itself, those
# up to the row (ids in order: a tie at the same millisecond is ordered by id); labels in
# (max(t - delay - w, cutoff), t - delay].
_READ = (
    _HEADER
    + """
local out = {}
for r = 0, nrows - 1 do
  local tid, t = ARGV[a], tonumber(ARGV[a + 1])
  local cutoff = tonumber(ARGV[a + 2])
  a = a + 4
  local ts = string.format('%d', t)
  local base = r * per_row
  for c = 1, ncnt do
    local key = KEYS[base + c]
    local same = redis.call('ZCOUNT', key, ts, ts)
    if same > 1 then
      local up_to = 0
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, ts, ts)) do
        if m <= tid then up_to = up_to + 1 end
      end
      same = up_to
    end
    for _, w in ipairs(cw[c]) do
      local lo = math.max(t - w, cutoff)
      out[#out + 1] = redis.call('ZCOUNT', key, string.format('(%d', lo),
                                 string.format('(%d', t)) + same
    end
  end
  for c = 1, nfr do
    local lk, fk = KEYS[base + ncnt + 2 * c - 1], KEYS[base + ncnt + 2 * c]
    local hi = t - fd[c]
    for _, w in ipairs(fw[c]) do
      local lo = math.max(hi - w, cutoff)
      if hi <= lo then
        out[#out + 1] = 0; out[#out + 1] = 0
      else
        local l, h = string.format('(%d', lo), string.format('%d', hi)
        out[#out + 1] = redis.call('ZCOUNT', lk, l, h)
        out[#out + 1] = redis.call('ZCOUNT', fk, l, h)
      end
    end
  end
end
return out
"""
)

# KEYS[1]: the watermark hash. ARGV: partition, time pairs; a mark never goes back.
_MARK = """
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if (not old) or tonumber(old) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""


class OnlineStoreError(RuntimeError):
    """The shared online store cannot be reached or refused a command."""


class RedisWindows:
    """A ``SharedWindows`` store in Redis (see the module docstring).

    Args:
        client: A ``redis.Redis`` client (``decode_responses`` off).
        namespace: Prefix of every key: one per deployment (or test).
        ttl_ms: Expiry of a key after its last write (the feature horizon and the margin).
        evict_margin_ms: How much older than a process's cutoff rows are kept (processes
            lag each other in event time; reads never go below their own cutoff).
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "fraud-detection",
        ttl_ms: int,
        evict_margin_ms: int = 86_400_000,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.ttl_ms = int(ttl_ms)
        self.evict_margin_ms = int(evict_margin_ms)
        self._write = client.register_script(_WRITE)
        self._read = client.register_script(_READ)
        self._mark = client.register_script(_MARK)
        # Called between the write and the read of a batch (the scorer waits there for
        # the other processes, see ``wait_for``).
        self.before_read: Callable[[], None] | None = None
        self.waits = 0
        self.timeouts = 0
        self.wait_ms = 0.0

    @classmethod
    def connect(
        cls, url: str, *, namespace: str, horizon_ms: int, evict_margin_ms: int = 86_400_000
    ) -> RedisWindows:
        """Connects to ``redis://host:port/db`` and checks that it answers.

        Raises:
            OnlineStoreError: Nothing answers there, with what to do.
        """
        import redis  # noqa: PLC0415 - only the multi-process scorer needs it

        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise OnlineStoreError(
                f"The online store at {url} does not answer ({exc}): start it "
                "(scripts/redis.sh start, or the compose service 'redis') or drop "
                "--online-store to score in a single process"
            ) from exc
        return cls(
            client,
            namespace=namespace,
            ttl_ms=horizon_ms + evict_margin_ms,
            evict_margin_ms=evict_margin_ms,
        )

    def _key(self, agg: SharedAggregation, kind: str, key: Any) -> str:
        return f"{self.namespace}:{agg.name}:{kind}:{key}"

    # ------------------------------------------------------------ SharedWindows --

    def ingest(
        self, aggregations: list[SharedAggregation], rows: SharedRows
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        counts = [(k, a) for k, a in enumerate(aggregations) if not a.is_fraud]
        frauds = [(k, a) for k, a in enumerate(aggregations) if a.is_fraud]
        n_rows = len(rows.ids)
        keys: list[str] = []
        argv: list[Any] = [self.ttl_ms, self.evict_margin_ms, n_rows, len(counts), len(frauds)]
        for _, agg in counts:
            argv += [len(agg.windows_ms), *agg.windows_ms]
        for _, agg in frauds:
            argv += [agg.delay_ms, len(agg.windows_ms), *agg.windows_ms]
        for i in range(n_rows):
            for k, agg in counts:
                keys.append(self._key(agg, "n", rows.keys[k][i]))
            for k, agg in frauds:
                keys += [self._key(agg, "l", rows.keys[k][i]), self._key(agg, "f", rows.keys[k][i])]
            argv += [rows.ids[i], rows.times[i], rows.cutoffs[i], rows.labels[i]]
        self._call(self._write, keys, argv)
        if self.before_read is not None:
            self.before_read()
        flat = np.asarray(self._call(self._read, keys, argv), dtype=np.float64)
        width = sum(len(a.windows_ms) for _, a in counts) + 2 * sum(
            len(a.windows_ms) for _, a in frauds
        )
        table = flat.reshape(n_rows, width)
        answers: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        col = 0
        for k, agg in counts:
            n = len(agg.windows_ms)
            answers[k] = (table[:, col : col + n].T, None)
            col += n
        for k, agg in frauds:
            n = len(agg.windows_ms)
            block = table[:, col : col + 2 * n]
            answers[k] = (block[:, 0::2].T, block[:, 1::2].T)
            col += 2 * n
        return [answers[k] for k in range(len(aggregations))]

    def add_labels(
        self, aggregations: list[SharedAggregation], labels: list[tuple[int, Any, int, str, bool]]
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        for k, key, t, tid, is_fraud in labels:
            agg = aggregations[k]
            for kind in ("l", "f") if is_fraud else ("l",):
                name = self._key(agg, kind, key)
                pipe.zadd(name, {tid: t})
                pipe.pexpire(name, self.ttl_ms)
        self._call(pipe.execute)

    # ------------------------------------------------------------- alignment --

    def _watermarks(self, topic: str) -> str:
        return f"{self.namespace}:watermarks:{topic}"

    def mark(self, topic: str, newest: dict[int, int]) -> None:
        """Records that every row of these partitions up to these times is written."""
        if newest:
            argv = [v for p, t in sorted(newest.items()) for v in (p, int(t))]
            self._call(self._mark, [self._watermarks(topic)], argv)

    def marks(self, topic: str) -> dict[int, int]:
        raw = self._call(self.client.hgetall, self._watermarks(topic))
        return {int(p): int(t) for p, t in raw.items()}

    def wait_for(self, topic: str, partitions: list[int], t: int, timeout_s: float) -> bool:
        """Waits until every partition is marked at ``t`` or later; False on timeout."""
        if not partitions or timeout_s <= 0:
            return True
        name = self._watermarks(topic)
        started = time.perf_counter()
        deadline = started + timeout_s
        self.waits += 1
        pause = 0.0002
        while True:
            values = self._call(self.client.hmget, name, partitions)
            if all(v is not None and int(v) >= t for v in values):
                self.wait_ms += (time.perf_counter() - started) * 1000.0
                return True
            now = time.perf_counter()
            if now >= deadline:
                self.timeouts += 1
                self.wait_ms += (now - started) * 1000.0
                return False
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.001)

    def clear(self) -> int:
        """Deletes every key of the namespace (tests, benchmarks); returns how many."""
        names = list(self.client.scan_iter(match=f"{self.namespace}:*", count=1000))
        if names:
            self._call(self.client.delete, *names)
        return len(names)

    def _call(self, fn: Any, *args: Any) -> Any:
        import redis  # noqa: PLC0415

        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise OnlineStoreError(f"The online store failed a command: {exc!r}") from exc
