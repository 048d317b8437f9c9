"""The worker processes that train an experiment's runs side by side on a CPU.

:func:`dropoutlib.experiments.run` hands the runs that are not cached yet to
:func:`train_side_by_side`, which trains them in ``jobs`` spawned processes, one thread each.

* **One pool for the session.** Starting a worker costs several seconds (it imports torch and
  dropoutlib, and the first optimizer imports ``torch._dynamo``). The pool is kept between
  calls, so a notebook that runs five experiments pays that once, not five times. The
  ``DROPOUTLIB_*`` variables (run cache, corpora) travel with every run, so a worker sees the
  environment of the call, not the one it started in. While a parent trains in the calling
  process, the workers for its children start on the idle cores (:func:`start`). :func:`shutdown`
  ends the workers, for example after editing dropoutlib in a running session; a failed or
  interrupted call ends them too, and the next call starts fresh ones.
* **Longest first.** Runs start in order of their estimated compute (:func:`cost`), the longest
  first, so a long run (R-Drop's two passes, a wide model) does not start last and leave one
  core idle at the end. Each run trains with one thread and its own seed, so neither the order
  nor the worker it lands on changes its numbers.
"""

from __future__ import annotations

import os

import torch

from dropoutlib.train import RunResult, train

__all__ = ["cost", "shutdown", "start", "train_side_by_side"]

_POOL = None  # (executor, progress queue, jobs) while workers are alive
_QUEUE = None  # in a worker: the queue its runs report their steps to
_CALLS = 0  # calls of train_side_by_side so far; tags each call's progress reports


def cost(spec) -> float:
    """The estimated compute of one run of ``spec`` (a :class:`~dropoutlib.experiments.RunSpec`),
    in arbitrary units: tokens times the matrix work per token, training passes counted three
    times (forward and backward), R-Drop's twice, plus the evaluations. Only the order matters."""
    m, t = spec.model, spec.train
    d, layers = getattr(m, "n_embd", 1), getattr(m, "n_layer", 1)
    per_token = layers * 12 * d * d + 2 * d * getattr(m, "vocab_size", 1)
    tokens = t.batch_size * getattr(m, "block_size", 1)
    passes = t.max_iters * 3 * (2 if t.r_drop_alpha else 1)
    evals = t.max_iters // max(1, t.eval_interval) + 1
    return float(per_token * tokens * (passes + evals * t.eval_iters * 2))


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("DROPOUTLIB_")}


def _start(queue) -> None:
    """In a new worker: one thread, and the queue its runs report to."""
    global _QUEUE
    torch.set_num_threads(1)
    _QUEUE = queue


def _train_one(call: int, label: str, spec, env: dict[str, str]) -> dict:
    """In a worker: train one run in the caller's ``DROPOUTLIB_*`` environment, reporting its
    steps as ``(call, label, step, val_loss or None)``."""
    for key in [k for k in os.environ if k.startswith("DROPOUTLIB_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)
    every = max(1, spec.train.max_iters // 50)

    def report(step, model):
        if step % every == 0 or step == spec.train.max_iters:
            _QUEUE.put((call, label, step, None))

    def report_loss(entry):
        _QUEUE.put((call, label, entry["step"], entry["val_loss"]))

    result = train(
        spec.model, spec.train, spec.corpus, progress=False, callback=report, on_eval=report_loss
    )
    return result.to_dict()


def _pool(jobs: int, n_runs: int):
    """The session's pool, to train ``n_runs`` runs ``jobs`` at a time: the running one if it has
    ``jobs`` workers, or more and the runs are no more than ``jobs``; else a new one."""
    global _POOL
    if _POOL is not None and not (_POOL[2] == jobs or (_POOL[2] > jobs and n_runs <= jobs)):
        shutdown()
    if _POOL is None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")  # fork is unsafe with torch's threads, and absent on macOS
        queue = ctx.Queue()
        executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_start, initargs=(queue,)
        )
        _POOL = (executor, queue, jobs)
    return _POOL


def _warm() -> None:
    """In a worker: pay the one-time costs of a first run (torch's optimizer imports
    ``torch._dynamo``) before there is a run to train."""
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


def start(jobs: int) -> None:
    """Start ``jobs`` workers now, without waiting for them: for a wave of runs that can train
    side by side once the run now training in this process (their parent) has finished."""
    executor, _, _ = _pool(jobs, jobs)
    for _ in range(jobs):
        executor.submit(_warm)


def shutdown() -> None:
    """End the workers (if any); the next parallel call starts new ones."""
    global _POOL
    if _POOL is None:
        return
    executor, queue, _ = _POOL
    _POOL = None
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()  # a run still training is stopped, not waited for
    executor.shutdown(wait=True, cancel_futures=True)  # its manager thread joins the processes
    queue.close()
    queue.join_thread()


def train_side_by_side(
    pending: dict, jobs: int, *, progress: bool = True, name: str = ""
) -> dict[str, RunResult]:
    """Train ``pending`` (``{label: RunSpec}``, none of them cached) in ``jobs`` one-thread
    worker processes, the longest first, with one progress bar over all their steps;
    ``{label: RunResult}`` in the order of ``pending``."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from queue import Empty

    global _CALLS
    _CALLS += 1
    call = _CALLS
    executor, queue, _ = _pool(jobs, len(pending))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = sum(spec.train.max_iters for spec in pending.values())
        bar = tqdm(total=total, desc=f"{name}: {len(pending)} runs, {jobs} at a time", unit="step")
    steps = dict.fromkeys(pending, 0)
    results = {}
    env = _environment()
    order = sorted(pending, key=lambda label: -cost(pending[label]))  # stable: ties keep order
    try:
        futures = {
            executor.submit(_train_one, call, label, pending[label], env): label for label in order
        }
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
            while True:
                try:
                    tag, label, step, val_loss = queue.get_nowait()
                except Empty:
                    break
                if tag != call:  # a late report of an earlier call's run
                    continue
                if bar is not None:
                    bar.update(max(0, step - steps[label]))
                    if val_loss is not None:
                        bar.set_postfix_str(f"{label}: step {step}, val {val_loss:.4f}")
                steps[label] = max(steps[label], step)
            for future in finished:
                results[futures[future]] = RunResult.from_dict(future.result())
    except BaseException:  # a run failed or the user interrupted: stop every worker
        shutdown()
        raise
    finally:
        if bar is not None:
            bar.close()
    return {label: results[label] for label in pending}
