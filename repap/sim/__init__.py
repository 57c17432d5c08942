"""Stage 3, simulation: LAMMPS. Melt-quench runs and SW energies (:mod:`.md`), relaxation of
whole ensembles to inherent structures (:mod:`.relaxation`), and the builder of multi-network
reference sets split by network (:mod:`.reference_sets`)."""
