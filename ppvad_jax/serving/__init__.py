"""The remote scenario (paper section 3.1): camera -> mutual TLS gRPC -> analysis server.

Camera side (``launch.camera``):

- ``camera_source``: frames from a file, device or stream at a fixed rate;
- ``camera_encoder``: encoder half of the autoencoder on CPU, optional latent
  local DP (``privacy.latent_ldp``), quantisation (``quantization``);
- ``camera_client``: one stream, an unacknowledged window resent after
  reconnecting with exponential backoff, back-off on "overloaded".

Server side (``launch.serve``, ``configs/serve.py``):

- ``tls``: development CA and certificates, gRPC credentials, peer identity;
- ``wire``: the frame and response formats (no generated code);
- ``validation``: every frame checked before it reaches the model;
- ``service``: the generic gRPC handler, one session per camera;
- ``engine``: micro-batched ticks: decode (``decoding``, bucketed jit) ->
  optical flow from the camera's previous reconstruction -> ``scorer``
  (``FrameScorer`` protocol: the trained two-stream classifier of
  ``two_stream_scorer``, or the ``MotionEnergyScorer`` baseline) -> SAS and
  alerts (``camera_state``, the step of ``evaluation.sas``) -> one commit
  (``alert_store``) -> responses;
- ``server``: assembles them; graceful shutdown drains the queue.

Durability: a response is sent only after the tick that produced it is
committed, so whatever a camera was told survives ``kill -9``; a resent frame
is answered from the store (exactly-once scoring over at-least-once
delivery).

What a latent reveals, the threat model, and running one server per GPU
behind a load balancer: ``THREAT_MODEL.md`` in this directory.
"""
