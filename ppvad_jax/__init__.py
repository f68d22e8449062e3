"""ppvad-jax: privacy-preserving video anomaly detection in JAX/Flax.

Subpackages, with imports flowing one way (launch -> training/serving ->
models/privacy/data/evaluation):

- ``data``: video datasets (UCF-Crime + UCFCrime2Local, the synthetic world),
  frame sampling and optical flow.
- ``models``: autoencoder and the server-side networks.
- ``privacy``: DP gradient privatizer and accountants, usable with any loss.
- ``training``: trainers.
- ``evaluation``: metrics and reports.
- ``serving``: camera client and analysis server.
"""
