"""Slices of the audit set (raymia.slices) and per-example risk (raymia.risk):
figures that add up, that can tell a perfect slice from a random one, that
match a direct count; and a trial that writes both tables."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import tiny_experiment
from raymia import SplitConfig
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.intervals import weighted_figures
from raymia.results import SCHEMAS, read_results, to_table, write_trial
from raymia.risk import exposure, most_exposed, risk_rows
from raymia.slices import WITH_INTERVALS, draw, resampled_figures, slice_figures, slice_rows


def audit(n=400, seed=0):
    """Balanced audit set: the attack is perfect on class 0, random elsewhere."""
    gen = np.random.default_rng(seed)
    member = np.arange(n) < n // 2
    labels = gen.integers(0, 4, n)
    scores = gen.normal(size=n)
    scores[labels == 0] = np.where(member[labels == 0], 10.0, -10.0) + gen.normal(
        size=(labels == 0).sum())
    correct = gen.random(n) < 0.8
    conf = gen.random(n)
    return scores, member, labels, correct, conf


@pytest.fixture(scope="module")
def table():
    scores, member, labels, correct, conf = audit()
    return slice_figures(scores, 0.0, member, labels, correct, conf, 400, 0.95,
                         np.random.default_rng(1))


def test_slice_counts_add_up_to_the_totals(table):
    total = table[table.slice_kind == "all"].iloc[0]
    assert (total.n_members, total.n_nonmembers) == (200, 200)
    for kind in ("class", "correct", "confidence"):
        part = table[table.slice_kind == kind]
        assert part.n_members.sum() == 200 and part.n_nonmembers.sum() == 200, kind


def test_class_slices_cover_every_class_and_quartiles_a_quarter_each(table):
    _, _, labels, _, conf = audit()
    assert list(table[table.slice_kind == "class"].slice) == ["0", "1", "2", "3"]
    quartiles = table[table.slice_kind == "confidence"]
    assert list(quartiles.slice) == ["q1", "q2", "q3", "q4"]
    assert ((quartiles.n_members + quartiles.n_nonmembers) == 100).all()
    assert quartiles.slice_low.iloc[0] == conf.min() and quartiles.slice_high.iloc[-1] == conf.max()
    assert (quartiles.slice_low.to_numpy()[1:] == quartiles.slice_high.to_numpy()[:-1]).all()
    assert table[table.slice_kind == "class"].slice_low.isna().all()


def test_a_perfect_slice_and_a_random_one(table):
    by = table.set_index("slice")
    assert by.loc["0", "auc"] == 1.0 and by.loc["0", "oracle_advantage"] == 1.0
    assert by.loc["0", "auc_lo"] == 1.0 and by.loc["0", "advantage"] == 1.0
    for c in ("1", "2", "3"):
        assert by.loc[c, "auc_lo"] < 0.5 < by.loc[c, "auc_hi"], c
        assert by.loc[c, "advantage_lo"] < 0 < by.loc[c, "advantage_hi"], c
    assert by.loc["1", "auc"] == pytest.approx(0.5, abs=0.12)


def test_figures_are_scikit_learns_on_the_slice(table):
    scores, member, labels, _, _ = audit()
    for c in ("1", "2"):
        sel = labels == int(c)
        row = table.set_index("slice").loc[c]
        assert row.auc == pytest.approx(roc_auc_score(member[sel], scores[sel]))
        flagged = scores[sel] >= 0.0
        want = flagged[member[sel]].mean() - flagged[~member[sel]].mean()
        assert row.advantage == pytest.approx(want)


def test_a_slice_without_nonmembers_has_counts_and_null_figures():
    member = np.array([True, True, False, False])
    out = slice_figures([0.9, 0.8, 0.1, 0.2], 0.5, member, [0, 0, 1, 1], [1, 1, 1, 1],
                        [0.1, 0.2, 0.3, 0.4], 100)
    by = out.set_index("slice")
    assert (by.loc["0", "n_members"], by.loc["0", "n_nonmembers"]) == (2, 0)
    assert by.loc["0", ["auc", "auc_lo", "advantage", "oracle_advantage"]].isna().all()
    assert by.loc["false", "n_members"] == 0 and np.isnan(by.loc["false", "auc"])
    assert by.loc["all", "auc"] == 1.0


@pytest.mark.parametrize("decimals", [0, 1, 6])
def test_resampled_figures_are_the_weighted_rocs(decimals):
    """The O(b n) draws by rank equal raymia.intervals.weighted_figures, ties included."""
    gen = np.random.default_rng(decimals)
    for _ in range(20):
        n_in, n_out = gen.integers(1, 120, 2)
        s_in = np.sort(np.round(gen.normal(0.5, 1, n_in), decimals))
        s_out = np.sort(np.round(gen.normal(0, 1, n_out), decimals))
        threshold = gen.choice([0.2, -10.0, 10.0])
        r = draw(gen, n_in, n_out, 40)
        got = resampled_figures(s_in, s_out, threshold, r)
        c_out = np.diff(r.cum_out, axis=1)
        assert (r.c_in.sum(1) == n_in).all() and (c_out.sum(1) == n_out).all()
        want = weighted_figures(np.r_[s_in, s_out], np.c_[r.c_in, np.zeros((40, n_out))],
                                np.c_[np.zeros((40, n_in)), c_out], threshold, WITH_INTERVALS)
        for f in WITH_INTERVALS:
            np.testing.assert_allclose(got[f], want[f], atol=1e-12, err_msg=f)


def test_exposure_agrees_with_a_direct_count():
    gen = np.random.default_rng(0)
    scores = np.round(gen.normal(size=300), 1).astype(np.float32)  # ties
    member = gen.random(300) < 0.5
    got = exposure(scores, member)
    for i in gen.choice(300, 40):
        assert got["fpr_at_score"][i] == (scores[~member] >= scores[i]).mean()
        assert got["tpr_at_score"][i] == (scores[member] >= scores[i]).mean()
        assert got["rank"][i] == 1 + (scores > scores[i]).sum()
    assert got["rank"].min() == 1 and scores[got["rank"] == 1].min() == scores.max()


@pytest.fixture(scope="module")
def trial(digits):
    exp = tiny_experiment(split=SplitConfig(n_members=60, n_shadow_pool=40, canaries=20),
                          attacks=("loss", "lira"))
    return exp, run_trial(exp, digits, InProcessExecutor(digits), sweep="t")


def test_a_trial_writes_slices_and_risk(trial, tmp_path):
    exp, tables = trial
    for name in ("slices", "risk"):
        assert to_table(name, tables[name]).schema == SCHEMAS[name]
    write_trial(tmp_path, exp.trial_id, tables)
    back = read_results(tmp_path)
    assert set(back["slices"].columns) == set(SCHEMAS["slices"].names)
    assert len(back["risk"]) == len(tables["risk"])


def test_the_all_slice_is_the_attacks_row(trial):
    _, tables = trial
    attacks, slices = tables["attacks"], tables["slices"]
    assert set(slices.eval_set) == {"original"}
    original = attacks[attacks.eval_set == "original"]
    assert len(slices) == len(original) * len(slices[["slice_kind", "slice"]].drop_duplicates())
    whole = slices[slices.slice_kind == "all"].merge(original, on=["attack", "variant"],
                                                     suffixes=("", "_attack"))
    assert len(whole) == len(original)
    np.testing.assert_allclose(whole.auc, whole.auc_attack)
    np.testing.assert_allclose(whole["tpr_at_fpr_0.01"], whole["tpr_at_fpr_0.01_attack"])
    np.testing.assert_allclose(whole.advantage, whole.advantage_attack, atol=1e-12)
    np.testing.assert_allclose(whole.oracle_advantage, whole.oracle_advantage_attack)
    chosen = slices[slices.attack == "attacker_choice"]
    source = slices[slices.variant == chosen.variant.iloc[0].split("/")[1]]
    source = source[source.attack == chosen.variant.iloc[0].split("/")[0]]
    np.testing.assert_array_equal(chosen.auc_lo, source.auc_lo)  # the same draws


def test_the_risk_table_ranks_each_eval_set(trial):
    _, tables = trial
    risk, scores = tables["risk"], tables["scores"]
    assert set(risk.eval_set) == {"original", "canaries"}
    assert set(risk.attack) == {"attacker_choice", "lira"}
    assert set(risk[risk.attack == "lira"].variant) <= {"online", "online_aug6"}
    for (attack, variant, eval_set), g in risk.groupby(["attack", "variant", "eval_set"]):
        s = scores[(scores.attack == attack) & (scores.variant == variant)
                   & (scores.eval_set == eval_set)]
        assert len(g) == len(s) and set(g.sample_id) == set(s.sample_id)
        assert g["rank"].is_monotonic_increasing and g.score.iloc[0] == g.score.max()
        out = g.score[~g.is_member].to_numpy()
        direct = [(out >= v).mean() for v in g.score]
        np.testing.assert_array_equal(g.fpr_at_score, direct)


def test_risk_labels_and_correctness_by_sample_id():
    scores = pd.DataFrame({"sweep": "s", "trial_id": "t", "attack": "attacker_choice",
                           "variant": "loss/global", "eval_set": "original",
                           "sample_id": [7, 3, 5, 9], "is_member": [True, False, True, False],
                           "score": np.float32([0.1, 0.9, 0.5, 0.3])})
    labels, correct = pd.Series([1, 2, 3, 4], index=[3, 5, 7, 9]), pd.Series(
        [True, False, True, False], index=[3, 5, 7, 9])
    risk = risk_rows(scores, labels, correct)
    assert list(risk.sample_id) == [3, 5, 9, 7]  # by rank
    assert list(risk.label) == [1, 2, 4, 3] and list(risk.correct) == [True, False, False, True]
    top = most_exposed(risk, n=1)
    assert list(top.sample_id) == [5] and top.fpr_at_score.iloc[0] == 0.5


def test_most_exposed_reads_a_results_directory(trial, tmp_path):
    exp, tables = trial
    write_trial(tmp_path, exp.trial_id, tables)
    top = most_exposed(tmp_path, n=5)
    assert len(top) == 5 and top.is_member.all()
    assert top.fpr_at_score.is_monotonic_increasing
    assert most_exposed(tmp_path / "nothing").empty


def test_slice_rows_from_a_scores_frame_without_a_trial():
    """What raymia.audit_logits does with arrays a user gives."""
    scores, member, labels, correct, conf = audit(200)
    frame = pd.DataFrame({"attack": "loss", "variant": "global", "eval_set": "original",
                          "sample_id": np.arange(200) + 1000, "is_member": member,
                          "score": scores, "prediction_score": conf})
    ids = np.arange(200) + 1000
    out = slice_rows(frame, pd.Series(labels, index=ids), pd.Series(correct, index=ids), 200,
                     thresholds={("loss", "global"): 0.0})
    assert (out.sweep == "").all() and out.advantage.notna().all()
    assert out.set_index("slice").loc["0", "auc"] == 1.0
    without = slice_rows(frame, pd.Series(labels, index=ids), pd.Series(correct, index=ids), 200)
    assert without.advantage.isna().all() and without.auc.notna().all()  # no threshold
