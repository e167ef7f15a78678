"""MC in: file readers with their checks, and the embedded toy MC.

- ``sources``     ``load_mc``: ROOT, Parquet, CSV, HDF5, npz (one file, a glob, a folder) → a checked ``MCSample``
- ``selection``   ``Expression``, ``Selection``: a cut such as ``pt > 2 and abs(eta) < 0.8``, parsed and evaluated without running code
- ``derived``     ``Derivations``: columns computed exactly after generation (``pt = hypot(px, py)``); ``suggest``
- ``containers``  HDF5 (h5py only), npz and pickle files, read without deserialising code
- ``zdc``         proton-ZDC images and their conditions → a checked ``ZDCSample``
- ``toy_xic``     ALICE Ξc+ → Ξ− π+ π+ reconstruction-level candidates from real kinematics
- ``toy_pid``     RICH-like particle identification: DLLs given species, p, η, occupancy (seed 002)
- ``toy_wjet``    W(→μν)+jet, seed 003's nine features at generator and reconstruction level
"""
