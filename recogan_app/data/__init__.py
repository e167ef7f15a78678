"""MC in: file readers with their checks, and the embedded toy MC.

- ``sources``     ``load_mc``: ROOT, Parquet, CSV, HDF5, npz → a checked ``MCSample``
- ``containers``  HDF5 (h5py only), npz and pickle files, read without deserialising code
- ``zdc``         proton-ZDC images and their conditions → a checked ``ZDCSample``
- ``toy_xic``     ALICE Ξc+ → Ξ− π+ π+ reconstruction-level candidates from real kinematics
"""
