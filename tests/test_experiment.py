"""One trial in process (no Ray): its tables, their contract, reproducibility."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from raymia import L2, ShadowConfig, SplitConfig, TrainConfig
from conftest import tiny_experiment
from raymia.data.splits import make_splits
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import make_jobs, run_trial
from raymia.metrics import ppv_at_fpr, tpr_at_fpr
from raymia.results import SCHEMAS, TABLES, to_table


@pytest.fixture(scope="module")
def tables(digits):
    return run_trial(tiny_experiment(), digits, InProcessExecutor(digits), sweep="t", node="here")


def test_tables_follow_the_schema(tables):
    assert set(TABLES) <= set(tables)
    for name in TABLES:
        assert to_table(name, tables[name]).schema == SCHEMAS[name]  # raises on a missing column
    trial = tables["trials"].iloc[0]
    assert trial["status"] == "ok" and trial["n_members"] == 60 and trial["n_shadow_models"] == 4
    assert trial["gap"] == pytest.approx(trial["train_acc"] - trial["test_acc"])
    assert trial["defense"] == "none" and pd.isna(trial["epsilon"]) and trial["node"] == "here"


def test_attack_rows_are_reproduced_from_the_scores(tables):
    attacks, scores = tables["attacks"], tables["scores"]
    assert len(attacks) == 11 and len(scores) == 11 * 120  # ten variants, attacker's choice
    for _, row in attacks.iterrows():
        part = scores[(scores.attack == row.attack) & (scores.variant == row.variant)]
        assert len(part) == 120
        fpr, tpr, _ = roc_curve(part.is_member, part.score, drop_intermediate=False)
        assert tpr_at_fpr(fpr, tpr, 0.01) == row["tpr_at_fpr_0.01"]
        assert tpr_at_fpr(fpr, tpr, 0.001) == row["tpr_at_fpr_0.001"]
        assert roc_auc_score(part.is_member, part.score) == row.auc
        member, flagged = part.is_member.to_numpy(), part.score.to_numpy() >= row.threshold
        assert row.advantage == pytest.approx(flagged[member].mean() - flagged[~member].mean())
        assert row.oracle_advantage == pytest.approx(max((tpr - fpr).max(), 0))
        for a in (0.01, 0.001):
            want = ppv_at_fpr(fpr, tpr, a, member.sum(), (~member).sum())
            assert row[f"ppv_at_fpr_{a:g}"] == pytest.approx(want, nan_ok=True)
        for f in ("advantage", "oracle_advantage", "ppv_at_fpr_0.01"):
            assert f"{f}_lo" in row and f"null_{f}_hi" in row


def test_signals_cover_target_and_every_shadow(tables, digits):
    signals = tables["signals"]
    assert len(signals) == (1 + 4) * 120
    target = signals[signals.role == "target"]
    assert target.in_train.sum() == 60
    shadow_in = signals[signals.role == "shadow"].groupby("sample_id").in_train.sum()
    assert (shadow_in == 2).all()  # IN for half of the 4 shadows
    assert ((signals.p_true > 0) & (signals.p_true <= 1)).all()
    clear = (signals.p_true - 0.5).abs() > 1e-4
    assert ((signals.phi > 0) == (signals.p_true > 0.5))[clear].all()  # phi > 0 <=> p_y > 1/2
    assert signals[signals.p_true > 0.5].correct.all()


def test_same_seed_twice_gives_identical_attack_tables(tables, digits):
    again = run_trial(tiny_experiment(), digits, InProcessExecutor(digits), sweep="t", node="here")
    pd.testing.assert_frame_equal(tables["attacks"], again["attacks"])
    pd.testing.assert_frame_equal(tables["scores"], again["scores"])
    pd.testing.assert_frame_equal(tables["slices"], again["slices"])
    pd.testing.assert_frame_equal(tables["risk"], again["risk"])


def test_shadow_jobs_follow_the_keep_matrix_and_ignore_the_defense(digits):
    exp = tiny_experiment(defense=L2(weight_decay=0.1))
    splits = make_splits(len(digits), exp.split, 4, exp.seed)
    jobs = make_jobs(exp, splits)
    assert [(j.role, len(j.seeds)) for j in jobs] == [("target", 1), ("shadow", 2), ("shadow", 2)]
    np.testing.assert_array_equal(jobs[0].train_indices[0], splits.members)
    np.testing.assert_array_equal(jobs[2].train_indices[1], splits.universe[splits.keep[3]])
    assert jobs[1].defense == L2(weight_decay=0.1)  # like_target by default
    shadows = ShadowConfig(n_models=4, models_per_job=2, train="undefended")
    undefended = make_jobs(tiny_experiment(defense=L2(0.1), shadows=shadows), splits)
    assert undefended[1].defense.name == "none"
    assert undefended[1].seeds == jobs[1].seeds  # shadow seeds do not depend on the defense


def test_an_overfit_undefended_model_leaks(digits):
    exp = tiny_experiment(train=TrainConfig(epochs=60, batch_size=16, lr=3e-3))
    attacks = run_trial(exp, digits, InProcessExecutor(digits))["attacks"]
    assert attacks.auc.max() > 0.6


def test_summarize_averages_each_configuration_over_its_seeds(tables, digits, tmp_path):
    from raymia.results import write_trial
    from raymia.summarize import summarize

    runs = [tables, run_trial(tiny_experiment(seed=1), digits, InProcessExecutor(digits), "t"),
            run_trial(tiny_experiment(defense=L2(0.5)), digits, InProcessExecutor(digits), "t")]
    for run in runs:
        write_trial(tmp_path, run["trials"].trial_id[0], run)
    table = summarize(tmp_path)
    assert table["defense.name"].tolist() == ["l2", "none"]  # sorted by what varies
    assert table.seeds.tolist() == [1, 2]
    none = table[table["defense.name"] == "none"].iloc[0]
    want = np.mean([r["trials"].test_acc[0] for r in runs[:2]])
    assert none.test_acc == pytest.approx(want)
    chosen = [r["attacks"].query("attack == 'attacker_choice'").iloc[0] for r in runs[:2]]
    assert none.auc == pytest.approx(np.mean([c.auc for c in chosen]))
    assert none.auc_sd == pytest.approx(np.std([c.auc for c in chosen], ddof=1))
    assert none.auc_lo == pytest.approx(np.mean([c.auc_lo for c in chosen]))
    assert none.advantage_hi == pytest.approx(np.mean([c.advantage_hi for c in chosen]))
    assert none["ppv_at_fpr_0.01_lo"] == pytest.approx(
        np.nanmean([c["ppv_at_fpr_0.01_lo"] for c in chosen]), nan_ok=True)
    assert none.choice == ",".join(sorted({c.variant for c in chosen}))
    holds = sum(c.auc_lo <= 0.5 <= c.auc_hi for c in chosen)
    assert none.chance == f"{holds}/2"
    assert "best_auc" not in table.columns  # no maximum over attacks on evaluation labels


def test_reference_attacks_in_a_trial(digits):
    exp = tiny_experiment(split=SplitConfig(n_members=60, n_shadow_pool=40),
                          attacks=("loss", "lira", "rmia"))
    tables = run_trial(exp, digits, InProcessExecutor(digits))
    attacks, scores = tables["attacks"], tables["scores"]
    assert sorted(attacks.attack.value_counts().items()) == [
        ("attacker_choice", 1), ("lira", 6), ("loss", 2), ("rmia", 2)]
    assert {"online_aug6", "offline_aug6"} < set(attacks.variant)  # identity, hflip, 4 shifts
    assert len(tables["signals"]) == 5 * 160  # the pool is part of the universe
    for _, row in attacks.iterrows():
        part = scores[(scores.attack == row.attack) & (scores.variant == row.variant)]
        assert len(part) == 120 and roc_auc_score(part.is_member, part.score) == row.auc
