"""What a sweep prints while it runs: a line per trial started and finished,
and its progress: on a terminal one live tqdm line (trials done, running and
failed, models trained and cached, elapsed, estimated time left); without a
terminal the same as a `progress:` line every `every` seconds."""
from __future__ import annotations

import sys
import time
from typing import Callable

from ray import tune
from tqdm import tqdm

MAX_FAILURES = 2  # Tune retries of a trial whose actors or node were lost


def choice_text(figures) -> str:
    """The attacker's choice with its AUC and TPR at 1% FPR and their intervals."""
    if figures.get("choice") is None:
        return "attacker's choice: none"
    return (f"choice={figures['choice']} auc={figures['auc']:.3f} "
            f"[{figures['auc_lo']:.3f}, {figures['auc_hi']:.3f}] "
            f"tpr@1%fpr={figures['tpr_at_fpr_0.01']:.3f} "
            f"[{figures['tpr_at_fpr_0.01_lo']:.3f}, {figures['tpr_at_fpr_0.01_hi']:.3f}]")


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


class Progress(tune.Callback):
    """`live`: draw a tqdm line (default: when standard output is a terminal)."""

    def __init__(self, labels: dict[str, str], out: Callable[[str], None],
                 every: float = 30.0, live: bool | None = None):
        self.labels, self.every = labels, every
        self.live = sys.stdout.isatty() if live is None else live
        self.bar, self._out = None, out  # the bar is drawn once the sweep starts
        self.done, self.failed, self.trained, self.cached = 0, 0, 0, 0
        self.running: set[str] = set()
        self.t0 = self.last = time.monotonic()

    def __getstate__(self):  # Tune stores its callbacks: the bar stays here
        return {**self.__dict__, "bar": None}

    def out(self, line: str) -> None:
        (self.bar.write if self.bar is not None else self._out)(line)

    def setup(self, **info):
        if self.live:
            self.bar = tqdm(total=len(self.labels), unit="trial", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n}/{total} trials {postfix}")

    def _id(self, trial) -> str:
        return trial.config["trial"]["id"]

    def status(self) -> str:
        """Trials done/running/failed, models so far, elapsed and time left."""
        return f"{self.done}/{len(self.labels)} trials done {self._detail()}"

    def _detail(self) -> str:
        elapsed = time.monotonic() - self.t0
        total = len(self.labels)
        left = f"~{_clock(elapsed / self.done * (total - self.done))} left" if self.done \
            else "time left unknown until a trial finishes"
        models = self.trained + self.cached
        planned = f" of ~{round(models / self.done * total)}" if self.done else ""
        return (f"({self.failed} failed), {len(self.running)} running; models {self.trained} "
                f"trained + {self.cached} cached{planned}; elapsed {_clock(elapsed)}, {left}")

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(self._id(trial))
        self.out(f"started  {self._id(trial)}  {self.labels[self._id(trial)]}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.done += 1
        self.running.discard(self._id(trial))
        if result["status"] != "ok":
            self.failed += 1
            detail = f"FAILED: {result['error']}"
        else:
            self.trained += result["models_trained"]
            self.cached += result["models_cached"]
            detail = (f"test_acc={result['test_acc']:.3f} {choice_text(result)}  "
                      f"models trained {result['models_trained']}, "
                      f"cached {result['models_cached']}  jobs on {result['job_nodes']}")
        done = " (already done)" if result.get("resumed") else ""
        self.out(f"[{self.done}/{len(self.labels)}] {self._id(trial)}  {detail}  "
                 f"trial on {result['node']}{done}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.out(f"retrying {self._id(trial)}  (its actors or node were lost)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.discard(self._id(trial))
        self.out(f"error    {self._id(trial)}  (lost {MAX_FAILURES + 1} times: given up)")

    def on_step_end(self, iteration, trials, **info):
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix_str(self._detail(), refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last >= self.every:
            self.out(f"progress: {self.status()}")
            self.last = time.monotonic()

    def on_experiment_end(self, trials, **info):
        if self.bar is not None:
            self.bar.close()
