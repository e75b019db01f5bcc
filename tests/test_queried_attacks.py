"""Attacks that need more than the plain outputs: augmented LiRA, the label-only
attacks, and out-of-distribution evaluation sets, in whole trials."""
import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from conftest import tiny_experiment
from raymia import (ConfigError, DataConfig, Experiment, LabelOnly, QueryConfig, ShadowConfig,
                    SplitConfig)
from raymia.attacks.lira import _averaged, lira_online
from raymia.data import load_dataset
from raymia.execution.inprocess import InProcessExecutor
from raymia.execution.plan import load_and_check
from raymia.experiment import run_trial


class Recording(InProcessExecutor):
    def __init__(self, data):
        super().__init__(data)
        self.batches = []

    def run(self, jobs):
        self.batches.append(jobs)
        return super().run(jobs)


@pytest.fixture(scope="module")
def queried(digits, tmp_path_factory):
    exp = tiny_experiment(attacks=("correctness", "lira", "augmentation", "boundary"),
                          queries=QueryConfig(boundary_queries=200, boundary_chunk=50,
                                              eval_sets=("permuted", "scaled", "natural")))
    executor = Recording(digits)
    tables = run_trial(exp, digits, executor, cache_dir=str(tmp_path_factory.mktemp("m")))
    return exp, tables, executor


def test_every_attack_reports_on_every_eval_set(queried):
    _, tables, _ = queried
    attacks = tables["attacks"]
    original = attacks[attacks.eval_set == "original"]
    assert set(original.attack) == {"correctness", "lira", "augmentation", "boundary",
                                    "attacker_choice"}
    assert {"online_aug6", "offline_aug6"} < set(original.variant)
    for name in ("permuted", "scaled", "natural"):
        ood = attacks[attacks.eval_set == name]
        assert set(ood.variant) == set(original.variant)
        assert (ood.n_members == 60).all() and (ood.n_nonmembers == 60).all()
        # the attacker's choice is made once, in distribution, and kept on every set
        assert set(ood[ood.attack == "attacker_choice"].variant) == \
            set(original[original.attack == "attacker_choice"].variant)
    counts = tables["scores"].groupby(["eval_set", "attack", "variant"]).size()
    assert (counts == 120).all()


def test_thresholds_stay_the_in_distribution_ones(queried):
    """Out-of-distribution columns are never fitted on: the metric thresholds match."""
    _, tables, _ = queried
    a = tables["attacks"].set_index(["eval_set", "attack", "variant"]).threshold
    for name in ("permuted", "scaled", "natural"):
        assert a[(name, "correctness", "global")] == a[("original", "correctness", "global")]
        assert a[(name, "augmentation", "6_queries")] == \
            a[("original", "augmentation", "6_queries")]


def test_members_score_the_same_whatever_the_non_members(queried):
    _, tables, _ = queried
    s = tables["scores"]
    members = s[s.is_member & (s.attack == "correctness") & (s.variant == "global")]
    by_set = members.pivot(index="sample_id", columns="eval_set", values="score")
    assert (by_set.nunique(axis=1) == 1).all()


def test_the_target_answers_the_queries_of_the_audit_set_only(queried, digits):
    from raymia.data.splits import make_splits

    exp, _, executor = queried
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    target, *shadows = executor.batches[0]
    rows = {q.name: q.rows for q in target.query_sets}
    np.testing.assert_array_equal(rows["aug"], splits.audit)
    np.testing.assert_array_equal(rows["ood/scaled/aug"], splits.nonmembers)
    for job in shadows:  # their thresholds are fitted on the whole universe
        np.testing.assert_array_equal({q.name: q.rows for q in job.query_sets}["aug"],
                                      splits.universe)


def test_boundary_distances_fan_out_and_are_zero_exactly_where_misclassified(queried, digits):
    exp, tables, executor = queried
    training, boundary = executor.batches
    # 120 audit, 2 x 120 universe, 3 OOD sets of 60 non-members, in chunks of 50
    assert len(training) == 3 and len(boundary) == 3 + 2 * 3 + 3 * 2
    assert all(j.boundary is not None and len(j.boundary.rows) <= 50 for j in boundary)
    s = tables["scores"]
    dist = s[(s.attack == "boundary") & (s.eval_set == "original")].set_index("sample_id").score
    correct = s[(s.attack == "correctness") & (s.variant == "global")
                & (s.eval_set == "original")].set_index("sample_id").score
    assert ((dist > 0) == (correct > 0)).all() and (dist > 0).any()
    assert tables["trials"].models_trained.item() == 5  # the query jobs trained nothing


@pytest.mark.parametrize("eval_set", ["permuted", "scaled", "natural"])
def test_boundary_distances_of_ood_non_members_are_the_targets_own(queried, eval_set):
    """On each OOD set: the members keep their distances and the threshold its
    value, and an OOD input is at distance 0 exactly where the target gets it wrong."""
    _, tables, _ = queried
    s = tables["scores"].query("eval_set in ['original', @eval_set]")
    dist = s[s.attack == "boundary"].pivot(index=["sample_id", "is_member"],
                                           columns="eval_set", values="score")
    members = dist.xs(True, level="is_member")
    np.testing.assert_array_equal(members.original, members[eval_set])
    ood = s[(s.eval_set == eval_set) & ~s.is_member].set_index(["attack", "variant", "sample_id"])
    d, correct = ood.score["boundary", "hsj"], ood.score["correctness", "global"]
    assert ((d > 0) == (correct > 0)).all()
    a = tables["attacks"].set_index(["eval_set", "attack"]).threshold
    assert a[(eval_set, "boundary")] == a[("original", "boundary")]


def test_label_only_attacks_run_on_a_label_only_output(digits, tmp_path):
    exp = tiny_experiment(output=LabelOnly(), attacks=("correctness", "augmentation", "boundary"),
                          queries=QueryConfig(boundary_queries=100))
    attacks = run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))["attacks"]
    assert set(attacks.attack) == {"correctness", "augmentation", "boundary", "attacker_choice"}
    assert attacks.auc.between(0, 1).all()


def test_noise_attack_on_binary_tabular_data(tmp_path):
    cfg = DataConfig(name="synthetic", size=600, n_features=40, n_classes=5)
    data = load_dataset(cfg)
    exp = tiny_experiment(data=cfg, attacks=("correctness", "noise"),
                          queries=QueryConfig(flips=(1, 4, 16), n_noise=8,
                                              eval_sets=("permuted", "noise")))
    load_and_check([exp])
    tables = run_trial(exp, data, InProcessExecutor(data), cache_dir=str(tmp_path))
    attacks = tables["attacks"].set_index(["attack", "eval_set"])
    noise = attacks.loc[("noise", "original")]
    assert noise.variant == "global" and 0 <= noise.auc <= 1
    for eval_set in ("permuted", "noise"):  # the flip count and threshold stay the fitted ones
        assert attacks.threshold[("noise", eval_set)] == noise.threshold
        scores = tables["scores"].query("attack == 'noise' and eval_set == @eval_set")
        member = scores[scores.is_member].score.to_numpy()
        original = tables["scores"].query("attack == 'noise' and eval_set == 'original'")
        np.testing.assert_array_equal(member, original[original.is_member].score.to_numpy())
        ood = scores[~scores.is_member].score.to_numpy()  # the OOD inputs' own noisy copies
        assert (ood != original[~original.is_member].score.to_numpy()).any()


def test_target_and_shadows_ask_the_same_noisy_copies_of_an_example():
    import torch

    from raymia.data.ood import make_ood
    from raymia.data.splits import make_splits
    from raymia.experiment import make_jobs
    from raymia.seeding import derive_seed

    cfg = DataConfig(name="synthetic", size=600, n_features=40, n_classes=5)
    data = load_dataset(cfg)
    exp = tiny_experiment(data=cfg, attacks=("noise",),
                          queries=QueryConfig(flips=(2,), n_noise=3, eval_sets=("permuted",)))
    splits = make_splits(len(data), exp.split, exp.shadows.n_models, exp.seed)
    target, shadow = make_jobs(exp, splits, None, data.kind)[:2]
    asked = [{q.name: q.make(data, q.rows) for q in job.query_sets} for job in (target, shadow)]
    n_audit, n_m = len(splits.audit), len(splits.members)
    assert asked[0]["noise/2"].shape[1] == n_audit  # the target: the audit set only
    assert torch.equal(asked[0]["noise/2"], asked[1]["noise/2"][:, :n_audit])
    # an OOD example's flips are its own, not those of the non-member it was built from
    x_ood = torch.as_tensor(make_ood("permuted", data, splits.nonmembers,
                                     derive_seed(exp.seed, "ood/permuted"))[0])
    ood_flips = asked[0]["ood/permuted/noise/2"] != x_ood
    flips = asked[0]["noise/2"][:, n_m:] != torch.as_tensor(data.x[splits.nonmembers])
    assert not torch.equal(ood_flips, flips)


@pytest.mark.parametrize("exp, where, says", [
    (lambda: tiny_experiment(attacks=("noise",)), "attacks", "noise needs binary tabular data"),
    (lambda: tiny_experiment(data=DataConfig(name="synthetic", size=600, n_features=40),
                             attacks=("augmentation",)),
     "queries.augmentations", "'hflip' needs image inputs"),
    (lambda: tiny_experiment(data=DataConfig(name="synthetic", size=600, n_features=40),
                             queries=QueryConfig(eval_sets=("natural",))),
     "queries.eval_sets", "natural"),
    (lambda: tiny_experiment(attacks=("boundary",), shadows=ShadowConfig(n_models=2),
                             queries=QueryConfig(boundary_models=4)),
     "queries.boundary_models", "asks for 4 shadow models"),
])
def test_queries_the_data_cannot_answer_fail_before_training(exp, where, says):
    with pytest.raises(ConfigError) as info:
        load_and_check([exp()])
    assert info.value.where == where and says in str(info.value)


def test_an_unknown_augmentation_or_eval_set_is_named():
    with pytest.raises(ConfigError, match=r"queries.augmentations\[1\]: unknown value 'rotate'"):
        Experiment.from_dict({"queries": {"augmentations": ["hflip", "rotate"]}})
    with pytest.raises(ConfigError, match=r"queries.eval_sets\[0\]: unknown value 'mnist'"):
        Experiment.from_dict({"queries": {"eval_sets": ["mnist"]}})


def test_augmented_lira_averages_the_per_query_likelihood_ratio():
    gen = np.random.default_rng(3)
    m, n, q = 8, 5, 3
    keep = np.zeros((m, n), bool)
    for j in range(n):
        keep[gen.permutation(m)[:4], j] = True
    refs, target = gen.normal(size=(m, q, n)), gen.normal(size=(q, n))
    flat_refs = refs.transpose(0, 2, 1).reshape(m, n * q)
    flat_target = target.T.ravel()
    got = _averaged(lira_online, q)(flat_target, flat_refs, keep)
    slow = np.zeros(n)
    for j in range(n):
        for i in range(q):
            ins, outs = refs[keep[:, j], i, j], refs[~keep[:, j], i, j]
            slow[j] += (norm.logpdf(target[i, j], ins.mean(), ins.std(ddof=1))
                        - norm.logpdf(target[i, j], outs.mean(), outs.std(ddof=1))) / q
    np.testing.assert_allclose(got, slow, rtol=1e-10)


def test_summaries_per_attack_and_per_eval_set(queried, tmp_path):
    from raymia.results import write_trial
    from raymia.summarize import summarize

    exp, tables, _ = queried
    write_trial(tmp_path, exp.trial_id, tables)
    by_attack = summarize(tmp_path, view="attacks")
    assert len(by_attack) == len(tables["attacks"].query("eval_set == 'original'"))
    by_set = summarize(tmp_path, attacks=["correctness"], view="eval_sets")
    assert sorted(set(by_set.eval_set)) == ["natural", "original", "permuted", "scaled"]
    fpr = by_set.set_index(["variant", "eval_set"]).fpr
    attacks = tables["attacks"].set_index(["attack", "variant", "eval_set"]).fpr
    assert fpr[("global", "scaled")] == attacks[("correctness", "global", "scaled")]


def test_an_ood_set_changes_no_decision_rule_and_no_member_score(digits, monkeypatch):
    """With the OOD answers replaced by the non-members' own, every attack keeps its
    threshold and every member its score: nothing is refitted on OOD columns."""
    import raymia.audit as audit
    from raymia.attacks import run_attacks
    from raymia.data.splits import make_splits
    from raymia.experiment import make_jobs

    exp = tiny_experiment(split=SplitConfig(n_members=60, n_shadow_pool=40),
                          attacks=("loss", "lira", "rmia", "nn", "augmentation"),
                          queries=QueryConfig(eval_sets=("permuted",)))
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    target, *shadows = InProcessExecutor(digits).run(make_jobs(exp, splits, None, digits.kind))
    base = audit.original_inputs(splits, digits.y[splits.universe], target, shadows)
    for r in (target, *shadows):
        r.queries["ood/permuted"] = r.logits[:, None, 60:120]
        r.queries["ood/permuted/aug"] = r.queries["aug"][:, :, 60:120]
    monkeypatch.setattr(audit, "ood_data", lambda e, d, rows, s: (None, digits.y[rows]))
    ood = audit.ood_inputs(exp, digits, splits, base, target, shadows, "permuted")
    before = {(o.attack, o.variant): o for o in run_attacks(exp.attacks, base, exp.reference)}
    after = {(o.attack, o.variant): o for o in run_attacks(exp.attacks, ood, exp.reference)}
    assert before.keys() == after.keys() and len(before) == 12
    for key, b in before.items():
        np.testing.assert_allclose(after[key].scores[:60], b.scores[:60], err_msg=str(key))
        np.testing.assert_equal(after[key].threshold, b.threshold)
    # the target's boundary distances and the adaptive attacker's Split-AI on the OOD
    # set take the non-members' places; no shadow distance is made up for it
    u = base.keep.shape[1]
    adaptive = {"shadow_probs": np.arange(120.0)[:, None],
                "ood_shadow_probs": {"ood/permuted": -np.arange(60.0)[:, None]}}
    with_extra = dataclasses.replace(base, extra={"selena_adaptive": adaptive},
                                     target_boundary=np.arange(120.0),
                                     shadow_boundary=np.ones((2, u)))
    spliced = audit.ood_inputs(exp, digits, splits, with_extra, target, shadows, "permuted",
                               boundary=-np.arange(1.0, 61.0))
    np.testing.assert_array_equal(spliced.extra["selena_adaptive"]["shadow_probs"][:, 0],
                                  np.r_[np.arange(60.0), -np.arange(60.0)])
    np.testing.assert_array_equal(spliced.target_boundary,
                                  np.r_[np.arange(60.0), -np.arange(1.0, 61.0)])
    made_up = np.isnan(spliced.shadow_boundary)
    assert made_up.shape == (2, u + 60) and (made_up == ~spliced.fit_columns).all()


def test_boundary_distances_do_not_depend_on_who_runs_the_chunks(digits, tmp_path):
    exp = tiny_experiment(attacks=("correctness", "boundary"),
                          queries=QueryConfig(boundary_queries=100, boundary_chunk=50,
                                              eval_sets=("permuted",)))
    cached = run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))
    whole = run_trial(exp, digits, InProcessExecutor(digits))  # one job per model, no cache
    pick = lambda t: t["scores"].query("attack == 'boundary'").score.to_numpy()  # noqa: E731
    np.testing.assert_array_equal(pick(cached), pick(whole))
