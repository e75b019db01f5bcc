"""Attacks that learn: classifiers trained on the shadow models' outputs for
their own members (label 1) and non-members (label 0), applied to the target.
The score is the attack model's P(member); its decision threshold is 0.5.

  shokri  one attack model per true class on the prediction vector
          (Shokri et al., S&P 2017), a class without both kinds of shadow
          examples falls back to one model for all classes
  nn      one model on (prediction vector, one-hot label), the inference
          model of the adversarial-regularization / SELENA code
  top3    one model on the three largest probabilities, sorted
          (Salem et al., NDSS 2019: label- and class-agnostic)

The model is scikit-learn's: `mlp` (default), `logistic` or `gboost`,
seeded, so the same signals give the same scores.
"""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from raymia import registry
from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.spec import register_attack
from raymia.signals import log_probs

MODELS = registry.ATTACK_MODELS
MODELS.register("mlp", lambda: make_pipeline(StandardScaler(), MLPClassifier(
    hidden_layer_sizes=(64,), max_iter=300, early_stopping=True, random_state=0)))
MODELS.register("logistic", lambda: make_pipeline(StandardScaler(),
                                                  LogisticRegression(max_iter=1000)))
MODELS.register("gboost", lambda: HistGradientBoostingClassifier(random_state=0))


def _fit_predict(model: str, x_train, y_train, x_test) -> np.ndarray:
    clf = MODELS[model]().fit(x_train, y_train)
    return clf.predict_proba(x_test)[:, 1]


def _shadow_data(inputs: AttackInputs):
    """Shadow prediction vectors (m * u, C), their labels and IN/OUT, flattened."""
    fit = inputs.fit
    probs = np.exp(log_probs(inputs.shadow_logits[:, fit])).reshape(-1, inputs.n_classes)
    keep = inputs.keep[:, fit]
    labels = np.broadcast_to(inputs.universe_labels[fit], keep.shape).ravel()
    return probs, labels, keep.ravel().astype(int)


def shokri(inputs: AttackInputs, model: str = "mlp") -> list[AttackOutput]:
    probs, labels, member = _shadow_data(inputs)
    target = np.exp(log_probs(inputs.target_logits))  # (n, C)
    scores = _fit_predict(model, probs, member, target)  # the all-class fallback
    for c in np.unique(inputs.labels):
        train, test = labels == c, inputs.labels == c
        if 0 < member[train].mean() < 1:
            scores[test] = _fit_predict(model, probs[train], member[train], target[test])
    return [AttackOutput("shokri", model, scores, 0.5)]


def nn(inputs: AttackInputs, model: str = "mlp") -> list[AttackOutput]:
    probs, labels, member = _shadow_data(inputs)
    eye = np.eye(inputs.n_classes)
    features = np.hstack([probs, eye[labels]])
    target = np.hstack([np.exp(log_probs(inputs.target_logits)), eye[inputs.labels]])
    return [AttackOutput("nn", model, _fit_predict(model, features, member, target), 0.5)]


def top3(inputs: AttackInputs, model: str = "mlp") -> list[AttackOutput]:
    def top(probs):
        k = min(3, probs.shape[1])
        return -np.sort(-probs, axis=1)[:, :k]
    probs, _, member = _shadow_data(inputs)
    target = top(np.exp(log_probs(inputs.target_logits)))
    return [AttackOutput("top3", model, _fit_predict(model, top(probs), member, target), 0.5)]


FIELDS = ("reference.attack_model",)
register_attack("shokri", fields=FIELDS)(lambda inputs, cfg: shokri(inputs, cfg.attack_model))
register_attack("nn", fields=FIELDS)(lambda inputs, cfg: nn(inputs, cfg.attack_model))
register_attack("top3", fields=FIELDS)(lambda inputs, cfg: top3(inputs, cfg.attack_model))
