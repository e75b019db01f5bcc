from raymia.train.hooks import Hook
from raymia.train.job import JobResult, TrainJob, run_job
from raymia.train.loop import TrainingDiverged, predict_logits, train_model

__all__ = ["Hook", "JobResult", "TrainJob", "TrainingDiverged", "predict_logits", "run_job",
           "train_model"]
