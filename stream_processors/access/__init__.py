"""Who reads the read API: department heads' credentials (:mod:`.heads`) and what each may read
(:mod:`.rules`)."""
