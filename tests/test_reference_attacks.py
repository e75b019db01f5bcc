"""LiRA and RMIA against slow, obvious references on small hand-made arrays."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from conftest import balanced_keep, tiny_experiment
from raymia import ConfigError, ReferenceConfig, ShadowConfig, SplitConfig
from raymia.attacks import AttackInputs, run_attacks
from raymia.attacks.lira import lira_offline, lira_online
from raymia.attacks.reference import MIN_STD, leave_one_out, masked_mean_std
from raymia.attacks.rmia import A_GRID, fit_a, marginal, rmia_scores


def stats(m=8, n=30, seed=0):
    gen = np.random.default_rng(seed)
    keep = balanced_keep(gen, m, n)
    refs = gen.normal(0, 1, (m, n)) + 2.0 * keep
    return refs, keep, gen.normal(1, 1, n)


def slow_fit(refs, keep, j, which):
    vals = refs[keep[:, j] == which, j]
    return vals.mean(), vals.std(ddof=1)


def test_per_example_fits_match_a_loop():
    refs, keep, _ = stats()
    mean, std = masked_mean_std(refs, keep)
    for j in range(refs.shape[1]):
        want = slow_fit(refs, keep, j, True)
        assert mean[j] == pytest.approx(want[0]) and std[j] == pytest.approx(want[1])


def test_global_variance_pools_residuals_around_per_example_means():
    refs, keep, _ = stats()
    mean, std = masked_mean_std(refs, keep, per_example=False)
    residuals = [refs[i, j] - mean[j] for i in range(8) for j in range(30) if keep[i, j]]
    # one degree of freedom per column mean
    assert np.all(std == pytest.approx(np.sqrt(np.sum(np.square(residuals)) / (len(residuals) - 30))))


def test_one_observation_per_column_does_not_collapse_the_spread():
    refs, keep, _ = stats(m=2)  # each column IN for exactly one of two models
    mean, std = masked_mean_std(refs, keep)
    assert np.all(std == pytest.approx(np.std(refs[keep], ddof=1)))
    assert std[0] > 0.1


def test_offline_marginal_without_out_models_uses_all_models():
    refs = np.array([[0.2, 0.4], [0.6, 0.8]])
    keep = np.array([[True, False], [True, True]])  # column 0 has no OUT model
    np.testing.assert_allclose(marginal(refs, keep, 1.0), [0.4, 0.4])


def test_an_example_never_in_takes_the_pooled_fit():
    refs, keep, _ = stats()
    keep[:, 0] = False  # never IN
    keep[:, 1] = False
    keep[0, 1] = True  # IN once: no spread of its own
    mean, std = masked_mean_std(refs, keep)
    pooled_mean = refs[keep].mean()
    assert mean[0] == pytest.approx(pooled_mean) and mean[1] == pytest.approx(refs[0, 1])
    assert std[0] == std[1] > MIN_STD and np.isfinite(std).all()


@pytest.mark.parametrize("per_example", [True, False])
def test_lira_matches_per_example_gaussians(per_example):
    refs, keep, target = stats(seed=3)
    online = lira_online(target, refs, keep, per_example)
    offline = lira_offline(target, refs, keep, per_example)
    mu_in, s_in = masked_mean_std(refs, keep, per_example)
    mu_out, s_out = masked_mean_std(refs, ~keep, per_example)
    for j in range(len(target)):
        if per_example:
            (mi, si), (mo, so) = slow_fit(refs, keep, j, True), slow_fit(refs, keep, j, False)
        else:
            mi, si, mo, so = mu_in[j], s_in[j], mu_out[j], s_out[j]
        pdf = lambda x, m, s: math.exp(-((x - m) / s) ** 2 / 2) / (s * math.sqrt(2 * math.pi))  # noqa
        assert online[j] == pytest.approx(math.log(pdf(target[j], mi, si))
                                          - math.log(pdf(target[j], mo, so)))
        assert offline[j] == pytest.approx(math.log(norm.cdf((target[j] - mo) / so)))


def slow_rmia(target, refs, keep, population, gamma, a):
    n = len(target)
    out = []
    for x in range(n):
        if a is None:
            px = refs[:, x].mean()
        else:
            px = 0.5 * ((1 + a) * refs[~keep[:, x], x].mean() + (1 - a))
        count = 0
        zs = [z for z in range(n) if population[z] and z != x]
        for z in zs:
            pz = refs[:, z].mean() if a is None else 0.5 * (
                (1 + a) * refs[~keep[:, z], z].mean() + (1 - a))
            if (target[x] / px) / (target[z] / pz) >= gamma:
                count += 1
        out.append(count / len(zs))
    return np.array(out)


@pytest.mark.parametrize("a", [None, 0.0, 0.3, 1.0])
@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_rmia_pairwise_counts_match_nested_loops(a, gamma):
    gen = np.random.default_rng(5)
    refs, keep, _ = stats(m=6, n=24, seed=5)
    refs = 1 / (1 + np.exp(-refs))  # probabilities
    target = gen.uniform(0.05, 1, 24)
    population = np.arange(24) >= 12
    got = rmia_scores(target, refs, keep, population, gamma, a)
    np.testing.assert_allclose(got, slow_rmia(target, refs, keep, population, gamma, a))


def test_rmia_counts_ties_as_at_least_gamma():
    refs = np.full((2, 4), 0.5)
    keep = np.array([[True, False, True, False], [False, True, False, True]])
    target = np.array([0.5, 0.25, 0.5, 0.25])  # ratios 1, 0.5, 1, 0.5 (exact in binary)
    population = np.array([False, False, True, True])
    got = rmia_scores(target, refs, keep, population, gamma=1.0, a=None)
    # x=0: 1/1 >= 1 and 1/0.5 >= 1; x=2 (in the population) is compared with z=3 only
    np.testing.assert_array_equal(got, [1.0, 0.5, 1.0, 0.0])


def test_offline_marginal_and_a_from_the_grid():
    refs, keep, _ = stats()
    p = 1 / (1 + np.exp(-refs))
    np.testing.assert_allclose(marginal(p, keep, 1.0), [p[~keep[:, j], j].mean() for j in range(30)])
    np.testing.assert_allclose(marginal(p, keep, 0.0), 0.5 * (marginal(p, keep, 1.0) + 1))
    assert fit_a(p, keep, np.arange(30) >= 15, 2.0) in A_GRID


def test_leave_one_out_uses_every_model_as_the_target_once():
    refs, keep, _ = stats(m=4, n=5)
    seen = []

    def score(t, r, k, own):
        seen.append((t.copy(), r.shape))
        return t
    scores, labels = leave_one_out(score, refs, keep)
    assert len(seen) == 4 and all(shape == (3, 5) for _, shape in seen)
    np.testing.assert_array_equal(scores, refs.ravel())
    np.testing.assert_array_equal(labels, keep.ravel())


def separable_inputs(m=8, n=40, pool=20, seed=0):
    gen = np.random.default_rng(seed)
    u = n + pool
    keep = balanced_keep(gen, m, u)
    labels = gen.integers(0, 3, u)
    onehot = np.eye(3)[labels]
    shadow = gen.normal(0, 1, (m, u, 3)) + 2.5 * onehot * keep[..., None]
    target_in = np.r_[np.arange(n) < n // 2, np.zeros(pool, bool)]
    target = gen.normal(0, 1, (u, 3)) + 2.5 * onehot * target_in[:, None]
    inputs = AttackInputs(target[:n], labels[:n], shadow, labels, keep, target[n:])
    return inputs, target_in[:n]


def test_lira_and_rmia_rank_members_first_on_separable_data():
    inputs, is_member = separable_inputs()
    outputs = run_attacks(["lira", "rmia"], inputs)
    assert {(o.attack, o.variant) for o in outputs} == {
        ("lira", "online"), ("lira", "online_global_var"), ("lira", "offline"),
        ("lira", "offline_global_var"), ("rmia", "offline"), ("rmia", "online")}
    for out in outputs:
        assert np.isfinite(out.scores).all() and np.isfinite(out.threshold)
        assert out.scores[is_member].mean() > out.scores[~is_member].mean(), out.variant
        assert out.predicted[is_member].mean() > out.predicted[~is_member].mean()


def test_one_class_and_few_reference_models_still_score():
    inputs, _ = separable_inputs(m=4)
    one_class = AttackInputs(inputs.target_logits, np.zeros_like(inputs.labels),
                             inputs.shadow_logits, np.zeros_like(inputs.universe_labels),
                             inputs.keep, inputs.target_population_logits)
    for out in run_attacks(["lira", "rmia"], one_class, ReferenceConfig(n_models=2)):
        assert np.isfinite(out.scores).all()


def test_bad_reference_settings_fail_early():
    with pytest.raises(ConfigError, match="^reference.n_models: asks for 9 reference models"):
        tiny_experiment(shadows=ShadowConfig(n_models=8), reference=ReferenceConfig(n_models=9))
    with pytest.raises(ConfigError, match="^attacks: rmia needs population samples"):
        tiny_experiment(attacks=("loss", "rmia"))
    tiny_experiment(attacks=("rmia",), split=SplitConfig(60, 20))


def test_rerun_from_stored_signals_reproduces_the_trial(digits, tmp_path):
    from raymia.execution.inprocess import InProcessExecutor
    from raymia.experiment import run_trial
    from raymia.rerun import rerun
    from raymia.results import write_trial

    exp = tiny_experiment(split=SplitConfig(n_members=60, n_shadow_pool=40, canaries=10),
                          attacks=("lira", "rmia"))
    tables = run_trial(exp, digits, InProcessExecutor(digits))
    write_trial(tmp_path, exp.trial_id, tables)
    again = rerun(tmp_path, (None, 1)).set_index(["n_reference", "eval_set", "attack", "variant"])
    attacks = tables["attacks"]
    plain = attacks[~attacks.variant.str.contains("_aug") & (attacks.attack != "attacker_choice")]
    assert set(plain.eval_set) == {"original", "canaries"}
    for _, row in plain.iterrows():  # phi is stored as float32: AUC within 0.01
        assert again.loc[(4, row.eval_set, row.attack, row.variant), "auc"] == \
            pytest.approx(row.auc, abs=0.01)
    one = again.loc[(1, "original")]
    assert len(one) == 6 and one.auc.between(0, 1).all()
    assert (again.auc_lo <= again.auc).all() and (again.auc <= again.auc_hi).all()
    offline = one.xs("offline", level="variant")  # one reference: what it trained on has no OUT
    assert (offline.n_no_out_reference > 0).all()
    assert (one.acc == 0.5).all()  # one reference model: no threshold to fit, none predicted
