"""Stage 2, analysis: measures of structures that need nothing but the structures. Radial
distribution functions (Numba), coordination, angles and defects, rings, S(Q), and network
identity (inherent-structure fingerprints)."""
