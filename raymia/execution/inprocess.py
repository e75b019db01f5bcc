"""Run training jobs one after another in this process (unit tests, debugging)."""
from __future__ import annotations

import socket

import torch

from raymia.data import Dataset
from raymia.train.job import JobResult, TrainJob, run_job


class InProcessExecutor:
    def __init__(self, data: Dataset, threads: int = 1):
        self.data = data
        torch.set_num_threads(threads)

    def run(self, jobs: list[TrainJob]) -> list[JobResult]:
        return [run_job(job, self.data, node=socket.gethostname()) for job in jobs]
