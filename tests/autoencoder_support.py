"""The tests' tiny autoencoder run, shared so every trainer and sweep test compiles the same shapes."""


def make_tiny(ae, dataset_dir, *, max_steps):
    """Shrinks an autoencoder config in place to the 48x64 test dataset (``dataset_dir`` fixture):
    features (16, 8, 4), expected batch 4 in one padded shape of 8, ``max_steps`` steps."""
    ae.data.dataset_dir = dataset_dir
    ae.data.height, ae.data.width = 48, 64
    ae.model_features = (16, 8, 4)
    ae.dp.expected_batch_size = 4
    ae.dp.microbatch_size = 2
    ae.dp.batch_bucket = 8  # one compiled shape in practice
    ae.schedule.max_steps = max_steps
    ae.schedule.log_every_steps = 1
    ae.schedule.eval_batch_size = 4
    return ae
