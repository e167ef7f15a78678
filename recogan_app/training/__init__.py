"""Training: a generic GAN loop and the engine entry points built on it.

- ``trainer``     the loop: steps, snapshots, pause/resume/stop, NaN rollback
- ``callbacks``   checkpointing, early stopping, progress bar
- ``events``      what observers receive (plain data)
- ``control``     thread-safe pause/resume/stop switches
- ``background``  a training in a daemon thread with an event queue (dashboard, notebooks)
- ``device``      CUDA, then MPS, then CPU
- ``tabular``     ``train_tabular``: MC sample → run directory
"""
