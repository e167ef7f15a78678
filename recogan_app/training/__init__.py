"""Training: a generic GAN loop and the engine entry points built on it.

- ``trainer``     the loop: steps, snapshots, pause/resume/stop, NaN rollback
- ``callbacks``   checkpointing, early stopping, progress bar
- ``events``      what observers receive (plain data)
- ``control``     pause/resume/stop switches, shared with threads or a child process
- ``background``  a training in a child process with an event queue (dashboard, notebooks)
- ``device``      CUDA, then MPS, then CPU
- ``tabular``     ``train_tabular``: MC sample → run directory
"""
