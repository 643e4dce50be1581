"""The lanes of one job attempt, shared in Redis by every worker that runs some of them.

A job with lanes is run by the worker that took it (the coordinator) and by helper runs on
other workers of its queue (runner_service.worker.lane_share). The coordinator posts each lane
as a piece: {id, lane, hosts: [[host, estimate_seconds], ...], retries, notes}. Any of them
claims the next piece (atomically: taken from the waiting list and marked claimed by a worker,
with an `alive` key that expires CLAIM_SECONDS after its last renewal), runs its hosts, and
says it is done with its return code and failures. A piece whose `alive` key expired while it
was claimed belongs to a worker that died (its host down, its processes killed): the
coordinator takes it back (`lost`) and posts what is left of it again.

Helpers do not write the job's events to the store: they push them here, redacted and in
their order, and the coordinator numbers and writes them with its own (`push_events`,
`pop_events`), so the job's event stream keeps one writer and one sequence.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from redis import Redis

from runner_service.job_queue import lanes_key

# A claimed piece whose worker has not renewed it for this long is taken for lost.
CLAIM_SECONDS = 15
# Nothing of a board is kept longer than this after its last post (a coordinator that died leaves it).
BOARD_SECONDS = 7 * 86400
EVENT_BATCH = 500

# LPOP the next waiting piece, mark it claimed by ARGV[1] and alive for ARGV[2] seconds, in one step:
# a worker that dies between the two can never leave a piece neither waiting nor claimed.
_CLAIM = """
local id = redis.call('LPOP', KEYS[1])
if not id then return false end
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('SET', KEYS[3] .. id, ARGV[1], 'EX', tonumber(ARGV[2]))
return id
"""
# Renew a claim only while it is still the caller's (the coordinator may have taken it back).
_RENEW = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2] .. ARGV[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


@dataclass
class Piece:
    id: str
    lane: int
    hosts: list[list]  # [host, estimate_seconds]
    retries: int = 0
    notes: dict[str, str] = field(default_factory=dict)  # host -> what happened to it before (a lost run)

    def host_names(self) -> list[str]:
        return [host for host, _ in self.hosts]


class LaneBoard:
    def __init__(self, redis: Redis, job_id: str, attempt: int):
        self.redis = redis
        prefix = lanes_key(job_id, attempt)
        self.waiting_key = prefix + ':waiting'
        self.pieces_key = prefix + ':pieces'
        self.claims_key = prefix + ':claims'
        self.alive_prefix = prefix + ':alive:'
        self.done_key = prefix + ':done'
        self.events_key = prefix + ':events'
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)

    # -- the coordinator -------------------------------------------------------------------

    def post(self, pieces: list[Piece]) -> None:
        """Make pieces waiting (new ones, or what is left of a lost one under a new id)."""
        if not pieces:
            return
        with self.redis.pipeline() as pipeline:
            pipeline.hset(self.pieces_key, mapping={piece.id: json.dumps(asdict(piece)) for piece in pieces})
            pipeline.rpush(self.waiting_key, *[piece.id for piece in pieces])
            for key in (self.pieces_key, self.waiting_key, self.claims_key, self.done_key, self.events_key):
                pipeline.expire(key, BOARD_SECONDS)
            pipeline.execute()

    def outstanding(self) -> int:
        """Pieces posted and not done (waiting, or claimed and running)."""
        with self.redis.pipeline() as pipeline:
            pipeline.hlen(self.pieces_key)
            pipeline.hlen(self.done_key)
            posted, done = pipeline.execute()
        return posted - done

    def waiting(self) -> int:
        return self.redis.llen(self.waiting_key)

    def lost(self) -> list[tuple[Piece, str]]:
        """Claimed pieces not done whose worker stopped renewing them: (piece, worker), each taken
        back from its worker (its late renewals fail, and it stops running the piece)."""
        claims = {key.decode(): value.decode() for key, value in self.redis.hgetall(self.claims_key).items()}
        if not claims:
            return []
        done = {key.decode() for key in self.redis.hkeys(self.done_key)}
        open_claims = [piece_id for piece_id in claims if piece_id not in done]
        if not open_claims:
            return []
        with self.redis.pipeline(transaction=False) as pipeline:
            for piece_id in open_claims:
                pipeline.exists(self.alive_prefix + piece_id)
            alive = pipeline.execute()
        lost = []
        for piece_id, exists in zip(open_claims, alive):
            # HDEL answers 1 to one caller only: a piece is taken back once.
            if not exists and self.redis.hdel(self.claims_key, piece_id):
                self.redis.hset(self.done_key, piece_id, json.dumps({'lost': claims[piece_id]}))
                lost.append((self.piece(piece_id), claims[piece_id]))
        return lost

    def results(self) -> list[dict]:
        """What each done piece reported: {rc, failures, worker} (or {lost: worker})."""
        return [json.loads(value) for value in self.redis.hvals(self.done_key)]

    def pop_events(self) -> list[dict]:
        """The event rows helpers pushed, oldest first, at most EVENT_BATCH."""
        rows = self.redis.lpop(self.events_key, EVENT_BATCH) or []
        return [json.loads(row) for row in rows]

    def clear(self) -> None:
        self.redis.delete(self.waiting_key, self.pieces_key, self.claims_key, self.done_key, self.events_key)

    # -- every worker that runs lanes --------------------------------------------------------

    def claim(self, worker: str) -> Piece | None:
        piece_id = self._claim(keys=[self.waiting_key, self.claims_key, self.alive_prefix],
                               args=[worker, CLAIM_SECONDS])
        return self.piece(piece_id.decode()) if piece_id else None

    def renew(self, piece_id: str, worker: str) -> bool:
        """Keep the claim alive; False when it is no longer this worker's (taken back as lost)."""
        return bool(self._renew(keys=[self.claims_key, self.alive_prefix], args=[piece_id, worker, CLAIM_SECONDS]))

    def finish(self, piece_id: str, worker: str, rc: int, failures: int) -> None:
        """The piece ran to its end (its events pushed before this)."""
        if self.redis.hget(self.claims_key, piece_id) != worker.encode():
            return  # taken back meanwhile: the coordinator accounts for it
        with self.redis.pipeline() as pipeline:
            pipeline.hset(self.done_key, piece_id, json.dumps({'rc': rc, 'failures': failures, 'worker': worker}))
            pipeline.delete(self.alive_prefix + piece_id)
            pipeline.execute()

    def abandon(self, piece_id: str, worker: str) -> None:
        """This worker stops running the piece without finishing it (it is stopping): the coordinator
        takes it back at its next look, without waiting for the claim to expire."""
        if self.redis.hget(self.claims_key, piece_id) == worker.encode():
            self.redis.delete(self.alive_prefix + piece_id)

    def push_events(self, rows: list[dict]) -> None:
        if rows:
            self.redis.rpush(self.events_key, *[json.dumps(row, default=str) for row in rows])

    def piece(self, piece_id: str) -> Piece:
        return Piece(**json.loads(self.redis.hget(self.pieces_key, piece_id)))
