"""Orchestrators: one package per orchestrator whose files gitdags governs (its definition kinds,
its tier that parses files in the sandbox, its rules, what it serves beside the files). Imports
the vocabulary, kinds, checks' rules and the sandbox; never the engine, serving or the daemon."""
