"""The sandbox repository code runs in: bubblewrap around a worker, an allow-listed read-only
filesystem, every namespace new, no capability. Imports errors only."""
