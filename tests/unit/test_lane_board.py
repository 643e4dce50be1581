"""The lane board of a job attempt (runner_service.worker.lane_board) on a real Redis: a piece is
claimed by one worker only, renewed only by its owner, taken back once when its claim expires,
finished only by its owner; relayed events keep their order; and each worker's share of lanes."""

from __future__ import annotations

import threading

import pytest

from runner_service.job_queue import connect
from runner_service.jobs.planner import lane_share
from runner_service.processes import PrivateRedis
from runner_service.worker import lane_board
from runner_service.worker.lane_board import LaneBoard, Piece


@pytest.fixture(scope='module')
def redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp('lane-board')).start()
    yield connect(server.url)
    server.stop()


@pytest.fixture
def board(redis, request):
    board = LaneBoard(redis, request.node.name[:20], 1)
    yield board
    board.clear()


def pieces(count: int) -> list[Piece]:
    return [Piece(id=str(index), lane=index, hosts=[['db%d' % index, 60.0]]) for index in range(count)]


def test_each_piece_is_claimed_once_whoever_asks_at_once(board):
    board.post(pieces(50))
    claimed: list[str] = []

    def claim(worker: str) -> None:
        while (piece := board.claim(worker)) is not None:
            claimed.append(piece.id)

    threads = [threading.Thread(target=claim, args=('w%d/1' % index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed, key=int) == [str(index) for index in range(50)]
    assert board.waiting() == 0 and board.outstanding() == 50 and board.lost() == []


def test_a_piece_whose_claim_expires_is_taken_back_once_and_its_worker_loses_it(board, redis):
    board.post(pieces(2))
    first, second = board.claim('w1/1'), board.claim('w2/2')
    assert board.renew(first.id, 'w1/1') and not board.renew(first.id, 'w2/2')
    redis.delete(board.alive_prefix + first.id)  # w1 stopped renewing: its claim expired
    lost = board.lost()
    assert [(piece.id, worker) for piece, worker in lost] == [(first.id, 'w1/1')]
    assert lost[0][0].hosts == [['db0', 60.0]]
    assert board.lost() == [], 'taken back once'
    assert not board.renew(first.id, 'w1/1'), 'a late renewal fails: w1 must stop'
    board.finish(first.id, 'w1/1', 0, 0)  # a late finish is not counted
    assert board.results() == [{'lost': 'w1/1'}]
    board.finish(second.id, 'w2/2', 2, 1)
    assert sorted(board.results(), key=str) == sorted([{'lost': 'w1/1'}, {'rc': 2, 'failures': 1, 'worker': 'w2/2'}],
                                                      key=str)
    assert board.outstanding() == 0
    # What is left of the lost piece is posted again under a new id.
    board.post([Piece(id='0.1', lane=0, hosts=[['db0', 60.0]], retries=1, notes={'db0': 'lost'})])
    again = board.claim('w2/2')
    assert again.id == '0.1' and again.retries == 1 and again.notes == {'db0': 'lost'}
    assert board.outstanding() == 1


def test_an_abandoned_piece_is_taken_back_at_once(board):
    board.post(pieces(1))
    piece = board.claim('w1/1')
    board.abandon(piece.id, 'w2/2')  # not its owner: nothing happens
    assert board.lost() == []
    board.abandon(piece.id, 'w1/1')
    assert [worker for _, worker in board.lost()] == ['w1/1']


def test_claims_expire_by_themselves(board, redis):
    board.post(pieces(1))
    piece = board.claim('w1/1')
    assert 0 < redis.ttl(board.alive_prefix + piece.id) <= lane_board.CLAIM_SECONDS


def test_relayed_events_come_out_in_their_order(board):
    rows = [{'seq': index, 'event': 'verbose', 'stdout': 'line %d' % index, 'data': {}} for index in range(1, 1201)]
    board.push_events(rows[:700])
    board.push_events(rows[700:])
    out = []
    while batch := board.pop_events():
        out.extend(batch)
    assert out == rows


@pytest.mark.parametrize('lanes, workers, most, share', [
    (5, 1, None, 5), (5, 2, None, 3), (4, 2, None, 2), (5, 5, None, 1), (3, 8, None, 1),
    (10, 2, 3, 3), (1, 0, None, 1), (0, 2, None, 1)])
def test_each_worker_runs_an_even_share_of_the_lanes_at_once(lanes, workers, most, share):
    assert lane_share(lanes, workers, most) == share
