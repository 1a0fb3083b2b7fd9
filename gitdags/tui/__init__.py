"""The Textual operator console (`gitdags tui`). Only the CLI imports it."""
