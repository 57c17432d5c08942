"""Stage 6, generation jobs: the chunked, resumable writer of ``repap generate``
(:mod:`.chunked`), and the search that rebuilds regions of training networks
(:mod:`.rebuild`) with its learnt fill (:mod:`.site_fill`). Drawing structures from a model is
the model's own (:mod:`repap.model.sampling`)."""
