"""Every point's epsilon before any training, with the trainer's own accountant call."""

import hashlib
import json

from ppvad_jax.evaluation import sweep_report
from ppvad_jax.pipelines.sweep import store
from ppvad_jax.privacy import accounting, latent_ldp
from ppvad_jax.training import autoencoder as ae_trainer


def plan_point(point, *, previous=None):
    """Planned steps and the epsilon the trainer will report for them, computed without training.

    The steps follow the trainer's rule (``max_epochs`` epochs of ``ceil(1/q)``
    steps, capped by ``max_steps``); the epsilon is ``autoencoder.privacy_report``
    itself, so the two numbers cannot drift apart. It costs 1-5 s per point
    (three RDP and one PLD evaluation): ``previous``, the entry an earlier run
    planned for the same config, data size and steps (``plan_key``), is reused.
    """
    ae = point.config
    splits, _ = ae_trainer.split_units(ae)
    num_units = len(splits["train"])
    sampling_rate = min(1.0, ae.dp.expected_batch_size / num_units)
    planned_steps = ae_trainer.planned_steps(ae, sampling_rate)
    key = hashlib.sha256(
        json.dumps([ae.to_json_best_effort(sort_keys=True), num_units, planned_steps]).encode()
    ).hexdigest()
    if previous and previous.get("plan_key") == key:
        return previous
    report = ae_trainer.privacy_report(
        ae, num_units=num_units, steps_run=planned_steps, planned=planned_steps
    )
    return {
        "point": point.name,
        "optimizer": point.optimizer,
        "train_units": num_units,
        "sampling_rate": sampling_rate,
        **accounting.json_safe(report),
        "planned_steps": planned_steps,
        "noise_multiplier": point.noise_multiplier,
        "plan_key": key,
    }


def ldp_plan(config):
    """Per-frame epsilon of each latent-LDP level (independent of the bound C: noise scales with it)."""
    out = []
    for level in config.latent_ldp.noise_multipliers:
        ldp = latent_ldp.LatentLdpConfig(
            enabled=True,
            l2_bound=1.0,
            noise_multiplier=float(level),
            delta=config.latent_ldp.delta,
            nonnegative=config.latent_ldp.nonnegative,
        )
        out.append(accounting.json_safe(latent_ldp.epsilon(ldp)))
    return out


def plan_sweep(points, config, workdir, *, log):
    """Plans every point (reusing the last run's entries), writes and prints the epsilon table.

    Returns:
      ``(plans by point name, plan)``; ``plan`` is what ``W/epsilon_plan.json`` holds:
      ``{"points", "errors", "latent_ldp"}``. A point that cannot be accounted is
      in ``errors``, not in ``plans``, and is not trained.
    """
    plans, plan_errors, previous = {}, {}, {}
    if (workdir / "epsilon_plan.json").is_file():
        previous = {p["point"]: p for p in store.read_json(workdir / "epsilon_plan.json")["points"]}
    for point in points:
        try:
            plans[point.name] = plan_point(point, previous=previous.get(point.name))
        except Exception as e:  # a point that cannot be accounted is not trained
            plan_errors[point.name] = f"{type(e).__name__}: {e}"
    ldp = ldp_plan(config)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = {"points": list(plans.values()), "errors": plan_errors, "latent_ldp": ldp}
    store.write_json(workdir / "epsilon_plan.json", plan)
    table = sweep_report.plan_table(plan)
    store.write_text(workdir / "epsilon_plan.md", table)
    log(table)
    return plans, plan
