"""Training jobs on Ray actors inside the trial's placement group.

The dataset is put in the object store once by the driver; each actor gets
the reference (read zero-copy on its node) and every job carries only index
arrays. Actors are placed in the current trial's placement group, so a
trial's children always fit what it reserved and trials never deadlock.
"""
from __future__ import annotations

import ray
import torch
from ray.util import ActorPool
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from raymia.config import Resources
from raymia.extensions import Extensions, install
from raymia.train.job import JobResult, TrainJob, run_job


def node_label() -> str:
    """The node this process runs on: its address and the start of its Ray node id."""
    ctx = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()}/{ctx.get_node_id()[:8]}"


def torch_threads(cpus: float) -> int:
    return max(1, int(cpus))


#: of a job's GPU share, what its tensors may take; the rest is left for the CUDA
#: contexts of the processes sharing the GPU, which the cap does not count
CONTEXT_MARGIN = 0.9


def cap_gpu_memory(gpus: float) -> float | None:
    """Hold this process to its share of the GPU's memory when it holds a fraction
    of one (e.g. 0.25: four models per GPU cannot starve each other). Returns
    the fraction set, or None (no GPU, or a whole one)."""
    if not (0 < gpus < 1) or not torch.cuda.is_available():
        return None
    torch.cuda.set_per_process_memory_fraction(CONTEXT_MARGIN * gpus)
    return CONTEXT_MARGIN * gpus


@ray.remote
class TrainWorker:
    def __init__(self, data, threads: int, gpus: float = 0.0,
                 extensions: Extensions | None = None):
        install(extensions)  # a sweep file's own models and defenses, here too
        torch.set_num_threads(threads)
        self.memory_fraction = cap_gpu_memory(gpus)
        self.data, self.node = data, node_label()

    def run(self, job: TrainJob) -> JobResult:
        return run_job(job, self.data, node=self.node)


class RayExecutor:
    """`resources.parallel_jobs` actors, each with `cpus_per_job` CPUs and
    `gpus_per_job` GPUs, in the caller's placement group when there is one."""

    def __init__(self, data_ref: ray.ObjectRef, resources: Resources,
                 extensions: Extensions | None = None):
        pg = get_current_placement_group()
        strategy = (PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=-1)
                    if pg is not None else None)
        self.actors = [
            TrainWorker.options(num_cpus=resources.cpus_per_job, num_gpus=resources.gpus_per_job,
                                scheduling_strategy=strategy)
            .remote(data_ref, torch_threads(resources.cpus_per_job), resources.gpus_per_job,
                    extensions)
            for _ in range(resources.parallel_jobs)
        ]

    def run(self, jobs: list[TrainJob]) -> list[JobResult]:
        pool = ActorPool(self.actors)
        return list(pool.map(lambda actor, job: actor.run.remote(job), jobs))

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


_WARM: dict[tuple, RayExecutor] = {}


def warm_executor(data_ref: ray.ObjectRef, resources: Resources,
                  extensions: Extensions | None = None) -> RayExecutor:
    """The executor of this process for (data, resources), created on first use.

    Tune reuses a trial's actor (and its placement group) for the next trial
    with the same resources, so keeping the job actors alive between trials
    spares each trial the start-up of fresh worker processes."""
    key = (data_ref.hex(), resources)
    if key not in _WARM:
        for stale in _WARM.values():
            stale.close()
        _WARM.clear()
        _WARM[key] = RayExecutor(data_ref, resources, extensions)
    return _WARM[key]


def discard_executor(data_ref: ray.ObjectRef, resources: Resources) -> None:
    """Forget (and stop) the executor after a system error: its actors may be gone."""
    executor = _WARM.pop((data_ref.hex(), resources), None)
    if executor is not None:
        executor.close()
