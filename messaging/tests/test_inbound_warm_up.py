"""Issue 11: the mail-reading libraries load when a Celery worker starts, not on the first reply it reads.

The hook is taken from the signals' own receiver lists and called as Celery calls it. The signals are not
sent in the test process: Celery's Django fixup also listens to them and would close this process's
database connections as if it were a freshly forked pool process."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from celery.signals import worker_init, worker_process_init
from celery.utils.dispatch import Signal

from messaging.inbound import language, return_dates, warm_up


def connected_hook(signal: Signal, dispatch_uid: str) -> Callable[..., None]:
    for (uid, _sender), receiver in signal.receivers:
        if uid == dispatch_uid:
            return receiver
    raise AssertionError(f"nothing is connected to {signal.name} as {dispatch_uid}")


HOOKS = [(worker_init, "messaging.inbound.warm_up.worker_init"),
         (worker_process_init, "messaging.inbound.warm_up.worker_process_init")]


@pytest.fixture
def cold_caches():
    language._detector.cache_clear()
    return_dates._dateparser.cache_clear()
    yield


@pytest.mark.parametrize(("signal", "uid"), HOOKS, ids=["worker_init", "worker_process_init"])
def test_a_worker_starting_loads_the_language_models_and_dateparser(cold_caches, signal, uid):
    connected_hook(signal, uid)(signal=signal, sender=None)

    assert language._detector.cache_info().currsize == 1
    assert return_dates._dateparser.cache_info().currsize == 1


def test_the_warm_up_hook_runs_every_loader_and_survives_a_failing_one(monkeypatch):
    ran = []
    for name in list(warm_up.LOADERS):
        monkeypatch.setitem(warm_up.LOADERS, name, lambda name=name: ran.append(name))

    def broken() -> None:
        raise RuntimeError("model file missing")

    monkeypatch.setitem(warm_up.LOADERS, "lingua", broken)

    connected_hook(worker_process_init, HOOKS[1][1])(signal=worker_process_init, sender=None)

    assert ran == [name for name in warm_up.LOADERS if name != "lingua"]
    assert "lingua" not in warm_up.inbound_readers_warm_up()


def test_every_real_loader_runs_without_error():
    assert warm_up.inbound_readers_warm_up() == list(warm_up.LOADERS)
