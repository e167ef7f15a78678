"""MC in: file readers with their checks, and the embedded toy MC.

- ``sources``  ``load_mc``: ROOT, Parquet, CSV, HDF5, npz → a checked ``MCSample``
- ``toy_xic``  ALICE Ξc+ → Ξ− π+ π+ reconstruction-level candidates from real kinematics
"""
