"""Consumers: the orchestrators that run what gitdags serves, asked through their APIs what they
have of each served DAG (`landed`, `pending`, `drift`, `broken`, `missing`), and told to pause
what gitdags pauses. `gitdags wait` and the daemon's polls both go through `Consumers`.

Imports serving's manifest (which files serve which DAG), the history store and the config;
never the engine, the daemon, the CLI or the console."""

from __future__ import annotations

from gitdags.consumers.poller import Consumers

__all__ = ["Consumers"]
