"""Checks: the rules a definition is judged by (format v1's validation), the checks across files
and sources (duplicate ids, namespaces, the cross-DAG graph), the pool of processes that reads
and judges a large change, and offline validation for CI. Imports the vocabulary, kinds and
orchestrators (for their kinds); never the history or serving."""
