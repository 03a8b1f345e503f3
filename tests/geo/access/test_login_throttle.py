"""Failed-login limits in the store: per account, per client address, shared by processes."""

import multiprocessing as mp

import pytest

from geo.access import login_throttle as lt
from tests.stores import address, reopen

LIMITS = lt.Limits(attempts=3, window_seconds=900)


@pytest.fixture
def store(new_store):
    return new_store()


def _fail(store, name, client, now):
    attempt = lt.begin(store, name, client, LIMITS, now=now)
    assert isinstance(attempt, lt.Attempt), attempt
    return attempt


def test_an_account_is_locked_after_its_failures_and_frees_up_when_they_leave_the_window(store):
    for t in (0, 10, 20):
        _fail(store, "Alice", "10.0.0.1", t)
    refused = lt.begin(store, "alice", "10.0.0.9", LIMITS, now=30)  # any case, any address
    assert isinstance(refused, lt.Lockout) and refused.kind == "account"
    assert refused.retry_after == 900 - 30  # the first failure leaves the window at t=900
    assert refused.minutes == 15
    assert lt.locked(store, "alice", "10.0.0.9", LIMITS, now=899) is not None
    assert lt.locked(store, "alice", "10.0.0.9", LIMITS, now=900) is None
    assert isinstance(lt.begin(store, "alice", "10.0.0.1", LIMITS, now=901), lt.Attempt)


def test_a_refused_attempt_is_not_counted(store):
    for t in (0, 1, 2):
        _fail(store, "bob", "10.0.0.1", t)
    for t in range(3, 50):
        assert isinstance(lt.begin(store, "bob", "10.0.0.1", LIMITS, now=t), lt.Lockout)
    # Still only 3 failures: free as soon as the first one leaves the window.
    assert lt.locked(store, "bob", "10.0.0.2", LIMITS, now=901) is None


def test_a_distributed_guess_at_one_account_is_limited(store):
    for i in range(3):
        _fail(store, "carol", f"10.0.1.{i}", i)
    assert isinstance(lt.begin(store, "carol", "10.0.1.200", LIMITS, now=5), lt.Lockout)
    # The other accounts are not affected.
    assert isinstance(lt.begin(store, "dave", "10.0.1.200", LIMITS, now=5), lt.Attempt)


def test_one_address_guessing_many_names_is_limited(store):
    for i in range(LIMITS.per_client):
        _fail(store, f"user{i}", "10.0.2.1", i)
    refused = lt.begin(store, "someone-else", "10.0.2.1", LIMITS, now=100)
    assert isinstance(refused, lt.Lockout) and refused.kind == "client"
    assert isinstance(lt.begin(store, "someone-else", "10.0.2.2", LIMITS, now=100), lt.Attempt)


def test_a_successful_sign_in_clears_the_account_but_not_the_addresses_failures(store):
    _fail(store, "erin", "10.0.3.1", 0)
    _fail(store, "erin", "10.0.3.1", 1)
    ok = _fail(store, "erin", "10.0.3.1", 2)
    lt.succeeded(store, ok)
    assert lt.locked(store, "erin", "10.0.3.1", LIMITS, now=3) is None
    _fail(store, "erin", "10.0.3.1", 4)
    _fail(store, "erin", "10.0.3.1", 5)
    assert lt.locked(store, "erin", "10.0.3.1", LIMITS, now=6) is None  # 2 failures since the reset
    con = store.connect()
    client_rows = con.execute("SELECT COUNT(*) FROM login_failures WHERE key = ?", (lt.client_key("10.0.3.1"),))
    assert client_rows.fetchone()[0] == 4  # the successful attempt's own mark was taken back
    con.close()


def test_an_administrator_can_clear_an_account(store):
    for t in range(3):
        _fail(store, "frank", "10.0.4.1", t)
    assert lt.clear(store, "FRANK") == 3
    assert lt.locked(store, "frank", "10.0.4.2", LIMITS, now=4) is None


def test_old_failures_are_deleted(store):
    for i in range(5):
        _fail(store, f"old{i}", "10.0.5.1", i)
    _fail(store, "new", "10.0.5.2", 10_000)
    con = store.connect()
    assert con.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 2
    con.close()


def _guess(where, n, queue):
    store = reopen(where)
    allowed = sum(isinstance(lt.begin(store, "target", f"10.9.{n}.{i}", LIMITS), lt.Attempt) for i in range(10))
    queue.put(allowed)


def test_two_processes_together_get_no_more_attempts_than_the_limit(store):
    store.connect().close()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_guess, args=(address(store), n, queue)) for n in range(2)]
    for p in procs:
        p.start()
    allowed = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(allowed) == LIMITS.attempts
