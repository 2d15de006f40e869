"""Tyk reload coalescing: one reload per burst, and every caller waits for a reload that started after it."""

from __future__ import annotations

import asyncio

from torii.gateways.reload import ReloadCoalescer


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> None:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.fail:
            raise RuntimeError("reload failed")


async def test_a_burst_of_fifty_requests_gives_one_reload() -> None:
    recorder = Recorder()
    coalescer = ReloadCoalescer(recorder, quiet=0.05, max_delay=1.0)
    await asyncio.gather(*(coalescer.reload() for _ in range(50)))
    assert recorder.calls == 1
    assert coalescer.reloads == 1


async def test_a_request_during_a_reload_waits_for_the_next_one() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = ReloadCoalescer(recorder, quiet=0.01, max_delay=0.5)
    first = asyncio.create_task(coalescer.reload())
    await recorder.started.wait()  # reload 1 is running: a write made now is not covered by it
    second = asyncio.create_task(coalescer.reload())
    recorder.release.set()
    await first
    assert not second.done() and recorder.calls == 1
    await second
    assert recorder.calls == 2


async def test_max_delay_bounds_a_never_ending_burst() -> None:
    recorder = Recorder()
    coalescer = ReloadCoalescer(recorder, quiet=0.2, max_delay=0.3)

    waiters = []
    for _ in range(8):
        waiters.append(asyncio.ensure_future(coalescer.reload()))
        await asyncio.sleep(0.1)  # each request renews the quiet period
    await asyncio.gather(*waiters)
    # Without max_delay the trickle would postpone the reload until it stops; with it, reloads happen during it.
    assert 2 <= recorder.calls <= 5


async def test_a_failed_reload_fails_its_whole_batch_only() -> None:
    recorder = Recorder(fail=True)
    coalescer = ReloadCoalescer(recorder, quiet=0.01, max_delay=0.5)
    results = await asyncio.gather(*(coalescer.reload() for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    recorder.fail = False
    await coalescer.reload()  # the next batch is unaffected
    assert recorder.calls == 2


async def test_no_reload_without_requests() -> None:
    recorder = Recorder()
    ReloadCoalescer(recorder, quiet=0.01)
    await asyncio.sleep(0)
    assert recorder.calls == 0
