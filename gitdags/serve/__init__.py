"""Serving: the deploy folder (atomic generations), the served git branches, S3 and `gitdags pull`,
and change hooks (the read API stays at its public path, `gitdags.registry`). Imports the
vocabulary and the history; never the engine or the daemon."""
