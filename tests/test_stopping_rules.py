"""The autoencoder's stopping rules as pure functions (training/autoencoder.py)."""

from ppvad_jax.training import autoencoder as trainer


def test_block_rule_stops_only_when_neither_ssim_nor_psnr_improves():
    meta = dict(trainer.FRESH_META)
    for ssim, psnr in [(0.5, 20.0), (0.4, 21.0), (0.45, 20.5), (0.49, 20.9)]:
        meta = trainer.block_rule(meta, {"ssim": ssim, "psnr": psnr}, patience=2)
    # The second block improved PSNR alone (a reset); the next two improved neither.
    assert meta["best_quality"] == [0.5, 21.0] and meta["stale_blocks"] == 2
    assert meta["stopped"] == "SSIM and PSNR stable for 2 blocks"
    assert trainer.FRESH_META["best_quality"] is None  # pure: the input is never changed


def test_epoch_rule_counts_epochs_without_a_lower_validation_loss():
    meta = dict(trainer.FRESH_META)
    for mse in (0.1, 0.09, 0.095, 0.09):
        meta = trainer.epoch_rule(meta, mse, patience=3)
    assert meta["epoch_best_val"] == 0.09 and meta["stale_epochs"] == 2 and not meta["stopped"]
    meta = trainer.epoch_rule(meta, 0.2, patience=3)
    assert meta["stopped"] == "validation loss did not improve for 3 epochs"
