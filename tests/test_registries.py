"""Conformance tests over the open registries (a new entry gets them for free),
the import graph, and cache keys that depend only on what a model depends on."""
import ast
import dataclasses
import pathlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import raymia
from conftest import balanced_keep
from raymia import ConfigError, Experiment, ModelConfig, ReferenceConfig, TrainConfig
from raymia.attacks import AttackInputs, MissingSignal
from raymia.config import to_dict
from raymia.registry import ATTACKS, DEFENSES, OUTPUTS
from raymia.train import cache
from raymia.train.job import TrainJob, run_job

ROOT = pathlib.Path(raymia.__file__).parent


# --- attacks -----------------------------------------------------------------------

def separable_inputs(seed: int = 0, flip_order: bool = False) -> tuple[AttackInputs, np.ndarray]:
    """Every signal an attack may read, members clearly apart: confident and
    correct on what a model trained on, unsure (half wrong) elsewhere; far from
    the boundary when IN. Audit: 40 members then 40 non-members; a pool of 40."""
    gen = np.random.default_rng(seed)
    n, pool, m, c, q = 80, 40, 8, 4, 3
    u = n + pool
    labels = gen.integers(0, c, u)
    member = np.arange(n) < n // 2
    keep = balanced_keep(gen, m, u)

    def logits(is_in, shape):  # (..., u or n) -> (..., C)
        z = gen.normal(0.3, 1.0, shape + (c,))
        true = np.where(is_in, 6.0, 0.0) + gen.normal(0, 0.5, shape)
        lab = np.broadcast_to(labels[: shape[-1]], shape)
        np.put_along_axis(z, lab[..., None], true[..., None], -1)
        return z

    target_u = logits(np.r_[member, np.zeros(pool, bool)], (u,))
    shadow = logits(keep, (m, u))
    aug_t = np.stack([logits(member, (n,)) for _ in range(q)])
    aug_s = np.stack([logits(keep, (m, u)) for _ in range(q)], 1)  # (m, q, u, C)
    distance = lambda is_in: np.abs(np.where(is_in, 2.0, 0.3) + gen.normal(0, 0.2, is_in.shape))  # noqa: E731
    queries_t = {"aug": aug_t, "noise/1": aug_t, "noise/2": aug_t}
    queries_s = {"aug": aug_s, "noise/1": aug_s, "noise/2": aug_s}
    inputs = AttackInputs(target_u[:n], labels[:n], shadow, labels, keep, target_u[n:],
                          target_queries=queries_t, shadow_queries=queries_s,
                          target_boundary=distance(member), shadow_boundary=distance(keep[:2]))
    return inputs, member


@pytest.fixture(scope="module")
def separable():
    inputs, member = separable_inputs()
    outputs = {}
    for name, spec in ATTACKS.items():
        try:
            outputs[name] = spec.run(inputs, ReferenceConfig())
        except MissingSignal:
            outputs[name] = None  # needs signals of its own (the adaptive attacker's models)
    return inputs, member, outputs


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_gives_finite_scores_higher_for_members(separable, name):
    inputs, member, outputs = separable
    if outputs[name] is None:
        pytest.skip(f"{name} needs signals of its own")
    assert outputs[name], f"{name} gave no variant"
    for out in outputs[name]:
        assert out.attack == name and out.scores.shape == member.shape
        assert np.isfinite(out.scores).all(), (name, out.variant)
        assert roc_auc_score(member, out.scores) > 0.75, (name, out.variant)
        assert out.threshold is None or isinstance(out.threshold, float)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_is_deterministic(separable, name):
    inputs, _, outputs = separable
    if outputs[name] is None:
        pytest.skip(f"{name} needs signals of its own")
    again = ATTACKS[name].run(inputs, ReferenceConfig())
    for a, b in zip(outputs[name], again):
        np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_keeps_its_rule_on_out_of_distribution_columns(separable, name):
    """Columns an attack may not fit on (OOD audit examples) change no member's score."""
    inputs, member, outputs = separable
    if outputs[name] is None:
        pytest.skip(f"{name} needs signals of its own")
    fit = np.ones(inputs.keep.shape[1], bool)
    fit[40:80] = False  # the audit non-members' columns: as if they were OOD inputs
    refs = np.r_[np.arange(40), np.arange(80, 120)]
    masked = dataclasses.replace(inputs, fit_columns=fit, reference_columns=refs)
    for out in ATTACKS[name].run(masked, ReferenceConfig()):
        assert out.scores.shape == member.shape and np.isfinite(out.scores[member]).all()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_declares_valid_needs(name):
    spec = ATTACKS[name]
    assert spec.name == name
    for stage in spec.stages:
        assert stage in ("boundary", "adaptive")
    assert set(spec.queries(Experiment(), "image")) <= {"aug", "noise"}


# --- defenses ----------------------------------------------------------------------

def tiny_job(digits, defense, output, cache_dir=None):
    order = np.random.default_rng(0).permutation(len(digits))
    return TrainJob("target", 0, (order[:60],), (7,), ModelConfig(widths=(32,)),
                    TrainConfig(epochs=2, batch_size=20, lr=3e-3), defense, order[60:120],
                    (order[120:180],), cache_dir=cache_dir, output=output)


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_defense_round_trips_trains_caches_and_reports_its_stats(digits, name, tmp_path):
    cls = DEFENSES[name]
    defense = cls()
    back = Experiment.from_dict({"defense": to_dict(defense)}).defense
    assert back == defense and type(back) is cls
    first = run_job(tiny_job(digits, defense, OUTPUTS["none"](), str(tmp_path)), digits)
    assert np.isfinite(first.logits).all() and not first.cached.any()
    assert set(first.stats[0]) <= set(cls.stats)  # nothing undeclared
    if name not in ("selena",):  # SELENA reports through its distillation (its own tests)
        assert set(cls.stats) <= set(first.stats[0]), "a declared stat was not reported"
    second = run_job(tiny_job(digits, defense, OUTPUTS["none"](), str(tmp_path)), digits)
    assert second.cached.all()
    np.testing.assert_array_equal(first.logits, second.logits)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_output_defense_round_trips_and_keeps_its_label_promise(digits, name):
    cls = OUTPUTS[name]
    output = cls()
    attacks = [n for n, spec in ATTACKS.items() if spec.labels_only or not cls.labels_only]
    back = Experiment.from_dict({"output": to_dict(output), "attacks": attacks[:1]}).output
    assert back == output and type(back) is cls
    plain = run_job(tiny_job(digits, DEFENSES["none"](), OUTPUTS["none"]()), digits)
    result = run_job(tiny_job(digits, DEFENSES["none"](), output), digits)
    assert result.logits.shape == plain.logits.shape and not np.isnan(result.logits).any()
    assert set(result.stats[0]) <= set(cls.stats)
    if cls.keeps_labels:  # the released label is the model's own
        same = result.logits[0].argmax(-1) == plain.logits[0].argmax(-1)
        assert same.mean() >= 0.95


def test_a_field_with_another_type_than_an_existing_defense_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Clash(DEFENSES["none"]):
        name = "clash"
        alpha: int = 1  # AdvReg's alpha is a float

    with pytest.raises(TypeError, match="'alpha' is <class 'int'>, but adv_reg's alpha"):
        DEFENSES.register(Clash)
    assert "clash" not in DEFENSES


def test_an_unknown_name_lists_the_registered_ones():
    with pytest.raises(ConfigError, match=r"^attacks\[0\]: unknown value 'nope'; valid: .*lira"):
        Experiment(attacks=("nope",))


# --- imports -----------------------------------------------------------------------

def import_graph() -> dict[str, set[str]]:
    """module -> the raymia modules it imports, top-level and inside functions."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path

    def resolve(name):
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("raymia"):
                deps |= {resolve(f"{node.module}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.startswith("raymia")}
        graph[name] = deps - {name}
    return graph


def test_no_import_cycle_among_raymias_modules():
    graph = import_graph()
    assert len(graph) > 50
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_config_imports_only_the_leaves():
    graph = import_graph()
    assert graph["raymia.config"] == {"raymia.errors", "raymia.registry"}
    assert graph["raymia.registry"] == {"raymia.errors"} and graph["raymia.errors"] == set()
    assert all("raymia" not in deps for deps in graph.values())  # the facade imports them


# --- cache keys --------------------------------------------------------------------

def keys(digits):
    order = np.arange(100)
    return {name: cache.model_key(cache.fingerprint(digits), order[:50], order[50:], 3,
                                  ModelConfig(), TrainConfig(), cls(), cache.torch.device("cpu"))
            for name, cls in DEFENSES.items()}


def test_adding_a_defense_module_changes_no_cache_key(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_DEFENSE_CODE", {})
    before = keys(digits)
    new = ROOT / "defenses" / "zz_added_for_a_test.py"
    try:
        new.write_text('"""A new training defense."""\nVALUE = 1\n')
        monkeypatch.setattr(cache, "_CODE", [])
        monkeypatch.setattr(cache, "_DEFENSE_CODE", {})
        assert keys(digits) == before
        # editing one defense's own source changes its models' keys, and only those
        source = ROOT / "defenses" / "regularization.py"
        text = source.read_text()
        monkeypatch.setattr(cache, "_DEFENSE_CODE", {})
        try:
            source.write_text(text + "\n# edited\n")
            after = keys(digits)
        finally:
            source.write_text(text)
        changed = {name for name in before if after[name] != before[name]}
        assert changed == {"l2", "label_smoothing"}
    finally:
        new.unlink(missing_ok=True)


def test_trial_ids_of_existing_configurations_stay():
    """Ids computed before the registries and the evaluation section existed."""
    from raymia import L2, MemGuard, SplitConfig

    assert Experiment().trial_id == "23530781d7cb"
    assert Experiment(defense=L2(weight_decay=1e-3), attacks=("loss", "lira"),
                      split=SplitConfig(n_members=100, n_shadow_pool=50)).trial_id == "ee0252d840d6"
    assert Experiment(output=MemGuard(epsilon=0.5)).trial_id == "acc0a5cdc5d2"


def test_a_defense_whose_meaning_changed_gets_new_trial_ids():
    from raymia import MixupMMD, Selena

    # the ids these configurations had before SELENA's shadow models were distilled
    # from Split-AIs of their own and MixupMMD's validation outputs became constants
    assert Experiment(defense=Selena()).trial_id != "027fb781ac65"
    assert Experiment(defense=MixupMMD()).trial_id != "ff6827393a42"


def test_sweeping_a_field_no_attack_of_the_sweep_reads_is_refused():
    from ray import tune

    from raymia import SplitConfig, Sweep
    from raymia.execution.plan import expand

    with pytest.raises(ConfigError, match=r"^sweep.space.reference.rmia_gamma: no attack of "
                                          r"this sweep reads it; rmia would$"):
        expand(Sweep("s", base=Experiment(attacks=("loss",)),
                     space={"reference.rmia_gamma": tune.grid_search([1.0, 2.0])}))
    fine = Sweep("s", base=Experiment(attacks=("loss", "rmia"), split=SplitConfig(n_shadow_pool=10)),
                 space={"reference.rmia_gamma": tune.grid_search([1.0, 2.0])})
    assert len(expand(fine)) == 2
